"""The HTTP face: FastAPI app factory, routers per resource, pydantic schemas, auth
dependencies, the error envelope and the SSE response. Knows nothing of models or arrays."""
