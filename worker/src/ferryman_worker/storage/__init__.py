"""PostgreSQL: one module per table or concern, the schema migrations with them."""
