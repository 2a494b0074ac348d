"""sparkd's HTTP routes, one module per API family; each adds its routes with `add_routes(app)`."""
