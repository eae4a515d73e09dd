"""The single DynamoDB table: key shapes, PynamoDB models, repositories, write paths."""
