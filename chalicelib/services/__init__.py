"""Use cases. Routes and event handlers call these; these call storage and the domain."""
