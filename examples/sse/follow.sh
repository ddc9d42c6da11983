#!/bin/sh
# Follow an eventvault log from the shell: Server-Sent Events with curl, one JSON event per line.
#
#   sh follow.sh http://127.0.0.1:2113 [AFTER]
#
# Prints each event's JSON (the `data:` lines) as it is committed; resumes after AFTER, a
# global position. Set EVENTVAULT_TOKEN to send a bearer token. Pipe it into `jq` to pick
# fields: sh follow.sh http://127.0.0.1:2113 | jq -r .event_type
set -eu
base="$1"
after="${2:-0}"
if [ -n "${EVENTVAULT_TOKEN:-}" ]; then
    set -- -H "Authorization: Bearer ${EVENTVAULT_TOKEN}"
else
    set --
fi
curl --silent --show-error --no-buffer --fail "$@" \
    "${base}/v1/subscriptions/log?after=${after}" | sed -u -n 's/^data: //p'
