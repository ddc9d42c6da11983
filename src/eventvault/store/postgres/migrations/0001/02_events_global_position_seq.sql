-- Global positions. Values are handed out only by reserve_positions, under the position lock,
-- together with the writing transaction's id (see docs/adr/0004-postgres-global-order.md).
CREATE SEQUENCE {schema}.events_global_position_seq AS bigint MINVALUE 1 START 1 CACHE 1;
