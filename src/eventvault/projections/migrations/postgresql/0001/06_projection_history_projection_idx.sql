CREATE INDEX projection_history_projection_idx ON {schema}.projection_history (projection, id)
