"""The administrator's command line (`invoicing-admin`): API tokens.

It reads the same settings as the service (TABLE_NAME, TOKEN_PEPPER or TOKEN_PEPPER_PARAM,
STAGE and the AWS_ENDPOINT_URL_* overrides of the local stack).
"""
