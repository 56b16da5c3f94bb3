"""Pulumi program for the data room's AWS side.

Two kinds of stack come from this one project (see ``infra/README.md``):

* ``data-room``: the isolated account (no internet path), the broker's identity and the
  Object-Locked audit bucket;
* ``production-grant``: applied in the production account, a read-only role trusted only by the
  broker role (with an ExternalId) and a CloudTrail of data events on the granted prefixes.

The package is importable so that tests and ``dataroom infra check`` build the very same
resources under Pulumi's mocks, without the Pulumi CLI or AWS credentials.
"""
