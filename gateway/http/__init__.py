"""The HTTP side: the Starlette app, the GraphQL view, admission, process state and serving."""
