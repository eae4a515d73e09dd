"""What every test suite shares: one `wait_for`, environment overrides, the servers a test session starts
once (DynamoDB Local, moto's SQS server, the Stripe emulator, the packaged templates), the reliability
suite's scale, and which tests count as slow."""
