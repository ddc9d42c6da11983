CREATE INDEX projection_history_projection_idx ON projection_history (projection, id)
