"""The GraphQL side: the schema's types, its executor and fast path, documents and errors.

`gateway.schema.build` assembles the schema; importing a module of this package loads
only what that module needs.
"""
