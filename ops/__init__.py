"""The operators' CLI (``upload-ops``): execution history and recent executions, read from the
CloudWatch Logs log groups of the stack (Express workflows have no GetExecutionHistory)."""
