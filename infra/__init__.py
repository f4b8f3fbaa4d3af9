"""CDK side of the upload service: one construct per concern (see DESIGN.md)."""
