"""Typed stack configuration, validated before any resource is declared.

An infra engineer sets these keys in ``Pulumi.<stack>.yaml`` (namespace ``dataroom``, plus
``aws:region``). Validation happens up front so that a typo fails ``pulumi preview`` with a
message naming the key, instead of producing a grant wider than intended.
"""

from __future__ import annotations

import dataclasses
import re
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

import pulumi

KIND_DATA_ROOM = "data-room"
KIND_PRODUCTION_GRANT = "production-grant"
STACK_KINDS = (KIND_DATA_ROOM, KIND_PRODUCTION_GRANT)

_ACCOUNT_ID_RE = re.compile(r"^\d{12}$")
_REGION_RE = re.compile(r"^[a-z]{2}(-[a-z]+)+-\d$")
_IAM_ARN_RE = re.compile(r"^arn:aws[a-z-]*:iam::\d{12}:\S+$")
_KMS_KEY_ARN_RE = re.compile(r"^arn:aws[a-z-]*:kms:[a-z0-9-]+:\d{12}:(key|alias)/[\w/-]+$")
_BUCKET_RE = re.compile(r"^[a-z0-9][a-z0-9.-]{1,61}[a-z0-9]$")
_EXTERNAL_ID_RE = re.compile(r"^[\w+=,.@:/-]{2,1224}$")
_NAME_RE = re.compile(r"^[\w+=,.@-]{1,64}$")
_VPCE_RE = re.compile(r"^vpce-[0-9a-f]+$")


class InfraConfigError(ValueError):
    """A stack's configuration is missing or invalid; the message names the key to fix."""


@dataclass(frozen=True)
class ParquetPrefix:
    """One production Parquet prefix the data room may read (``s3://bucket/prefix/``)."""

    bucket: str
    prefix: str

    def __post_init__(self) -> None:
        if not _BUCKET_RE.match(self.bucket):
            raise InfraConfigError(f"parquetPrefixes: {self.bucket!r} is not a valid S3 bucket name")
        if not self.prefix or self.prefix.startswith("/") or not self.prefix.endswith("/"):
            raise InfraConfigError(
                f"parquetPrefixes: prefix {self.prefix!r} of bucket {self.bucket} must be a non-empty "
                "folder such as 'warehouse/findings/' (no leading '/', a trailing '/'); "
                "granting a whole bucket is deliberately not supported"
            )
        if any(ch in self.prefix for ch in "*?"):
            raise InfraConfigError(f"parquetPrefixes: prefix {self.prefix!r} must not contain wildcards")

    @property
    def bucket_arn(self) -> str:
        return f"arn:aws:s3:::{self.bucket}"

    @property
    def objects_arn(self) -> str:
        """Every object under the prefix (and nothing in a sibling such as ``findings-secret/``)."""
        return f"arn:aws:s3:::{self.bucket}/{self.prefix}*"

    @property
    def uri(self) -> str:
        return f"s3://{self.bucket}/{self.prefix}"


@dataclass(frozen=True)
class AccountConfig:
    """Where the data-room account comes from: a new Organizations member account, or an existing id."""

    create: bool = False
    id: str | None = None
    name: str | None = None
    email: str | None = None
    parent_id: str | None = None
    access_role_name: str = "OrganizationAccountAccessRole"
    deploy_role_arn: str | None = None

    def __post_init__(self) -> None:
        if self.create:
            if not self.name or not self.email:
                raise InfraConfigError("account: creating a member account needs 'name' and 'email'")
            if self.id:
                raise InfraConfigError("account: give either 'create: true' or an existing 'id', not both")
        elif not self.id or not _ACCOUNT_ID_RE.match(self.id):
            raise InfraConfigError(
                "account: set 'id' to the existing data-room account's 12-digit id, or 'create: true' "
                "with 'name' and 'email' to create an Organizations member account"
            )
        if self.deploy_role_arn and not _IAM_ARN_RE.match(self.deploy_role_arn):
            raise InfraConfigError(f"account.deployRoleArn: {self.deploy_role_arn!r} is not an IAM role ARN")


_IMAGE_RE = re.compile(r"^[a-z0-9][\w.-]*(:\d+)?(/[a-z0-9][\w.-]*)+(:(?P<tag>[\w][\w.-]{0,127})|@sha256:[0-9a-f]{64})$")
_CHART_VERSION_RE = re.compile(r"^\d+\.\d+\.\d+([-+][\w.-]+)?$")
_QUANTITY_RE = re.compile(r"^\d+(\.\d+)?(m|[KMGT]i?|[KMGT])?$")
DEFAULT_IMAGE_TAG = "0.1.0"
DEFAULT_PROXY_TAG = "4.6.3"


@dataclass(frozen=True)
class RoomConfig:
    """The room on EKS: cluster size, chart version, the one image, replicas, the registry database.

    Every workload runs ``image`` (broker, review, single-user servers: one Dockerfile), pinned by
    tag or digest: ``latest`` or no tag would let a push change what runs without a deploy.
    """

    image: str = ""
    hub_image: str = ""  # the chart's hub and proxy images, mirrored into the account's ECR (no internet)
    proxy_image: str = ""
    kubernetes_version: str = "1.33"
    jupyterhub_chart_version: str = "4.3.1"
    node_instance_type: str = "m6i.xlarge"
    node_min: int = 2
    node_desired: int = 2
    node_max: int = 6
    broker_replicas: int = 2
    review_replicas: int = 1
    namespace: str = "dataroom"
    singleuser_cpu_limit: float = 2.0
    singleuser_memory_limit: str = "4G"
    singleuser_cpu_guarantee: float = 0.5
    singleuser_memory_guarantee: str = "1G"
    registry_instance_class: str = "db.t4g.medium"
    registry_storage_gb: int = 20
    registry_engine_version: str = "17"
    catalog_file: str = ""  # the room's catalog.toml (path relative to infra/): the ConfigMap dataroom-catalog

    def __post_init__(self) -> None:
        for key, image in (("image", self.image), ("hubImage", self.hub_image), ("proxyImage", self.proxy_image)):
            match = _IMAGE_RE.match(image) if image else True
            if not match or (match is not True and match.group("tag") == "latest"):
                raise InfraConfigError(
                    f"room.{key}: {image!r} must be pinned: <registry>/<repository>:<tag> (not 'latest') "
                    "or <registry>/<repository>@sha256:<digest>"
                )
        if not _CHART_VERSION_RE.match(self.jupyterhub_chart_version):
            raise InfraConfigError(
                f"room.jupyterhubChartVersion: {self.jupyterhub_chart_version!r} must be an exact chart version such as 4.3.1"
            )
        if not re.match(r"^1\.\d{2}$", self.kubernetes_version):
            raise InfraConfigError(f"room.kubernetesVersion: {self.kubernetes_version!r} must be like 1.33")
        if not 1 <= self.node_min <= self.node_desired <= self.node_max:
            raise InfraConfigError("room: node counts must satisfy 1 <= nodeMin <= nodeDesired <= nodeMax")
        if self.broker_replicas < 1 or self.review_replicas < 1:
            raise InfraConfigError("room.brokerReplicas and room.reviewReplicas must be at least 1")
        if not re.match(r"^[a-z0-9]([a-z0-9-]{0,61}[a-z0-9])?$", self.namespace):
            raise InfraConfigError(f"room.namespace: {self.namespace!r} is not a Kubernetes namespace name")
        for key, quantity in (("singleuserMemoryLimit", self.singleuser_memory_limit), ("singleuserMemoryGuarantee", self.singleuser_memory_guarantee)):
            if not _QUANTITY_RE.match(quantity):
                raise InfraConfigError(f"room.{key}: {quantity!r} is not a memory quantity such as 4G")
        if not 0 < self.singleuser_cpu_guarantee <= self.singleuser_cpu_limit:
            raise InfraConfigError("room: 0 < singleuserCpuGuarantee <= singleuserCpuLimit")
        if self.registry_storage_gb < 20:
            raise InfraConfigError("room.registryStorageGb must be at least 20 (RDS minimum)")


AUTHENTICATORS = {
    "generic-oauth": "GenericOAuthenticator",
    "github": "GitHubOAuthenticator",
    "azuread": "AzureAdOAuthenticator",
    "google": "GoogleOAuthenticator",
}
"""The hub's login (oauthenticator, in the chart's hub image): entry point name -> its config section."""


@dataclass(frozen=True)
class HubAuthConfig:
    """Who may log in to the hub: an OAuth identity provider and its settings (``dataroom:hubAuth``).

    The client secret is a separate Pulumi secret (``dataroom:hubOAuthClientSecret``), never in here.
    """

    authenticator: str = "generic-oauth"
    settings: Mapping[str, Any] = field(default_factory=dict)

    def __post_init__(self) -> None:
        if self.authenticator not in AUTHENTICATORS:
            raise InfraConfigError(f"hubAuth.authenticator: {self.authenticator!r} must be one of {', '.join(AUTHENTICATORS)}")
        if not isinstance(self.settings, Mapping):
            raise InfraConfigError("hubAuth.settings must be an object of the authenticator's settings")
        for key in self.settings:
            if not re.match(r"^[a-z][a-z0-9_]*$", str(key)):
                raise InfraConfigError(f"hubAuth.settings: {key!r} is not an authenticator setting name (snake_case)")
        if "client_secret" in self.settings:
            raise InfraConfigError("hubAuth.settings: put the client secret in `pulumi config set --secret dataroom:hubOAuthClientSecret`")

    @property
    def section(self) -> str:
        return AUTHENTICATORS[self.authenticator]


def _hub_auth(raw: Any) -> HubAuthConfig:
    if raw is None:
        return HubAuthConfig()
    if not isinstance(raw, Mapping) or set(raw) - {"authenticator", "settings"}:
        raise InfraConfigError("hubAuth must be an object with 'authenticator' and 'settings'")
    return HubAuthConfig(authenticator=str(raw.get("authenticator", "generic-oauth")), settings=dict(raw.get("settings") or {}))


_ROOM_KEYS = {
    "image": "image", "hubImage": "hub_image", "proxyImage": "proxy_image", "kubernetesVersion": "kubernetes_version", "jupyterhubChartVersion": "jupyterhub_chart_version",
    "nodeInstanceType": "node_instance_type", "nodeMin": "node_min", "nodeDesired": "node_desired", "nodeMax": "node_max",
    "brokerReplicas": "broker_replicas", "reviewReplicas": "review_replicas", "namespace": "namespace",
    "singleuserCpuLimit": "singleuser_cpu_limit", "singleuserMemoryLimit": "singleuser_memory_limit",
    "singleuserCpuGuarantee": "singleuser_cpu_guarantee", "singleuserMemoryGuarantee": "singleuser_memory_guarantee",
    "registryInstanceClass": "registry_instance_class", "registryStorageGb": "registry_storage_gb",
    "registryEngineVersion": "registry_engine_version", "catalogFile": "catalog_file",
}


def _room(raw: Any) -> RoomConfig:
    if raw is None:
        return RoomConfig()
    if not isinstance(raw, Mapping):
        raise InfraConfigError("room must be an object of room settings (image, brokerReplicas, ...)")
    unknown = set(raw) - set(_ROOM_KEYS)
    if unknown:
        raise InfraConfigError(f"room: unknown keys {sorted(unknown)}; expected some of {sorted(_ROOM_KEYS)}")
    return RoomConfig(**{_ROOM_KEYS[k]: (str(v) if k in {"kubernetesVersion", "registryEngineVersion"} else v) for k, v in raw.items()})


@dataclass(frozen=True)
class DataRoomStackConfig:
    """Configuration of a ``data-room`` stack (the isolated account)."""

    environment: str
    region: str
    account: AccountConfig
    production_account_id: str
    audit_retention_days: int = 365
    vpc_cidr: str = "10.42.0.0/16"
    availability_zones: tuple[str, ...] = ()
    production_region: str = ""
    audit_bucket_name: str | None = None
    broker_role_name: str = ""
    read_only_role_name: str = ""
    trail_name: str = ""
    room: RoomConfig = field(default_factory=RoomConfig)
    broker_external_id: str | None = None  # the production grant's ExternalId, for the broker pods (secret)
    hub_auth: HubAuthConfig = field(default_factory=HubAuthConfig)
    hub_oauth_client_secret: str | None = None  # secret
    kind: str = field(default=KIND_DATA_ROOM, init=False)

    def __post_init__(self) -> None:
        _check_common(self.environment, self.region)
        _check_account_id("productionAccountId", self.production_account_id)
        defaults = {
            "image": f"dataroom:{DEFAULT_IMAGE_TAG}",
            "hub_image": f"jupyterhub/k8s-hub:{self.room.jupyterhub_chart_version}",
            "proxy_image": f"jupyterhub/configurable-http-proxy:{DEFAULT_PROXY_TAG}",
        }
        missing = {attr: repository for attr, repository in defaults.items() if not getattr(self.room, attr)}
        if missing and not self.account.id:
            raise InfraConfigError(
                "room.image, room.hubImage and room.proxyImage are required when the account is created (no account id to name its ECR)"
            )
        ecr = f"{self.account.id}.dkr.ecr.{self.region}.amazonaws.com"
        if missing:
            filled = dataclasses.replace(self.room, **{attr: f"{ecr}/{repository}" for attr, repository in missing.items()})
            object.__setattr__(self, "room", filled)
        if self.audit_retention_days < 1:
            raise InfraConfigError("auditRetentionDays must be at least 1 (Object Lock needs a retention)")
        if self.broker_external_id is not None and not _EXTERNAL_ID_RE.match(self.broker_external_id):
            raise InfraConfigError("brokerExternalId must be 2-1224 characters of [A-Za-z0-9+=,.@:/_-] (the grant stack's externalId)")
        _default(self, "availability_zones", (f"{self.region}a", f"{self.region}b"))
        _default(self, "production_region", self.region)
        _default(self, "broker_role_name", f"dataroom-broker-{self.environment}")
        _default(self, "read_only_role_name", f"dataroom-read-only-{self.environment}")
        _default(self, "trail_name", f"dataroom-production-data-events-{self.environment}")
        for key, value in (("brokerRoleName", self.broker_role_name), ("readOnlyRoleName", self.read_only_role_name)):
            _check_name(key, value)
        if self.audit_bucket_name is not None and not _BUCKET_RE.match(self.audit_bucket_name):
            raise InfraConfigError(f"auditBucketName: {self.audit_bucket_name!r} is not a valid S3 bucket name")

    @property
    def read_only_role_arn(self) -> str:
        """The production role's ARN, known before the production stack exists (its name is fixed)."""
        return f"arn:aws:iam::{self.production_account_id}:role/{self.read_only_role_name}"

    @property
    def trail_arn(self) -> str:
        return f"arn:aws:cloudtrail:{self.production_region}:{self.production_account_id}:trail/{self.trail_name}"


@dataclass(frozen=True)
class ProductionGrantStackConfig:
    """Configuration of a ``production-grant`` stack (applied in the production account)."""

    environment: str
    region: str
    production_account_id: str
    broker_role_arn: str
    external_id: str
    parquet_prefixes: tuple[ParquetPrefix, ...]
    audit_bucket_name: str
    audit_kms_key_arn: str
    data_kms_key_arns: tuple[str, ...] = ()
    source_vpc_endpoint_ids: tuple[str, ...] = ()
    deploy_role_arn: str | None = None
    read_only_role_name: str = ""
    trail_name: str = ""
    kind: str = field(default=KIND_PRODUCTION_GRANT, init=False)

    def __post_init__(self) -> None:
        _check_common(self.environment, self.region)
        _check_account_id("productionAccountId", self.production_account_id)
        if not _IAM_ARN_RE.match(self.broker_role_arn):
            raise InfraConfigError(
                f"brokerRoleArn: {self.broker_role_arn!r} is not an IAM ARN; copy it from "
                "`pulumi stack output brokerRoleArn` of the data-room stack"
            )
        if not _EXTERNAL_ID_RE.match(self.external_id):
            raise InfraConfigError(
                "externalId must be 2-1224 characters of [A-Za-z0-9+=,.@:/_-]; set it with "
                "`pulumi config set --secret dataroom:externalId <value>`"
            )
        if not self.parquet_prefixes:
            raise InfraConfigError("parquetPrefixes: list at least one {bucket, prefix} to grant")
        if not _BUCKET_RE.match(self.audit_bucket_name):
            raise InfraConfigError(f"auditBucketName: {self.audit_bucket_name!r} is not a valid S3 bucket name")
        for key_arn in (self.audit_kms_key_arn, *self.data_kms_key_arns):
            if not _KMS_KEY_ARN_RE.match(key_arn):
                raise InfraConfigError(f"{key_arn!r} is not a KMS key ARN (auditKmsKeyArn / dataKmsKeyArns)")
        for vpce in self.source_vpc_endpoint_ids:
            if not _VPCE_RE.match(vpce):
                raise InfraConfigError(f"sourceVpcEndpointIds: {vpce!r} is not a VPC endpoint id (vpce-...)")
        if self.deploy_role_arn and not _IAM_ARN_RE.match(self.deploy_role_arn):
            raise InfraConfigError(f"deployRoleArn: {self.deploy_role_arn!r} is not an IAM role ARN")
        _default(self, "read_only_role_name", f"dataroom-read-only-{self.environment}")
        _default(self, "trail_name", f"dataroom-production-data-events-{self.environment}")
        _check_name("readOnlyRoleName", self.read_only_role_name)


StackConfig = DataRoomStackConfig | ProductionGrantStackConfig


def _default(obj: Any, attr: str, value: Any) -> None:
    """Fill a derived default on a frozen dataclass (defaults depend on other fields)."""
    if not getattr(obj, attr):
        object.__setattr__(obj, attr, value)


def _check_common(environment: str, region: str) -> None:
    if not re.match(r"^[a-z0-9][a-z0-9-]{0,30}$", environment):
        raise InfraConfigError(f"environment: {environment!r} must be lower-case letters, digits and '-'")
    if not _REGION_RE.match(region):
        raise InfraConfigError(f"aws:region: {region!r} is not an AWS region such as eu-west-1")


def _check_account_id(key: str, value: str) -> None:
    if not _ACCOUNT_ID_RE.match(value):
        raise InfraConfigError(f"{key}: {value!r} is not a 12-digit AWS account id (quote it in YAML)")


def _check_name(key: str, value: str) -> None:
    if not _NAME_RE.match(value):
        raise InfraConfigError(f"{key}: {value!r} is not a valid IAM name")


def _int_or(value: int | None, default: int) -> int:
    return default if value is None else value


def _prefixes(raw: Any) -> tuple[ParquetPrefix, ...]:
    if not isinstance(raw, Sequence) or isinstance(raw, str):
        raise InfraConfigError("parquetPrefixes must be a list of {bucket, prefix} objects")
    out = []
    for item in raw:
        if not isinstance(item, Mapping) or set(item) != {"bucket", "prefix"}:
            raise InfraConfigError(f"parquetPrefixes: {item!r} must have exactly the keys 'bucket' and 'prefix'")
        out.append(ParquetPrefix(bucket=str(item["bucket"]), prefix=str(item["prefix"])))
    return tuple(out)


def _account(raw: Any) -> AccountConfig:
    if not isinstance(raw, Mapping):
        raise InfraConfigError("account must be an object: {id: ...} or {create: true, name: ..., email: ...}")
    keys = {"create", "id", "name", "email", "parentId", "accessRoleName", "deployRoleArn"}
    unknown = set(raw) - keys
    if unknown:
        raise InfraConfigError(f"account: unknown keys {sorted(unknown)}; expected some of {sorted(keys)}")
    return AccountConfig(
        create=bool(raw.get("create", False)),
        id=str(raw["id"]) if raw.get("id") is not None else None,
        name=raw.get("name"),
        email=raw.get("email"),
        parent_id=raw.get("parentId"),
        access_role_name=raw.get("accessRoleName", "OrganizationAccountAccessRole"),
        deploy_role_arn=raw.get("deployRoleArn"),
    )


def load_stack_config() -> StackConfig:
    """Read and validate the current stack's configuration from Pulumi's config."""
    cfg = pulumi.Config("dataroom")
    region = pulumi.Config("aws").require("region")
    kind = cfg.require("kind")
    environment = cfg.get("environment") or pulumi.get_stack()
    if kind == KIND_DATA_ROOM:
        return DataRoomStackConfig(
            environment=environment,
            region=region,
            account=_account(cfg.require_object("account")),
            production_account_id=str(cfg.require("productionAccountId")),
            audit_retention_days=_int_or(cfg.get_int("auditRetentionDays"), 365),
            vpc_cidr=cfg.get("vpcCidr") or "10.42.0.0/16",
            availability_zones=tuple(cfg.get_object("availabilityZones") or ()),
            production_region=cfg.get("productionRegion") or "",
            audit_bucket_name=cfg.get("auditBucketName"),
            broker_role_name=cfg.get("brokerRoleName") or "",
            read_only_role_name=cfg.get("readOnlyRoleName") or "",
            trail_name=cfg.get("trailName") or "",
            room=_room(cfg.get_object("room")),
            broker_external_id=cfg.get("brokerExternalId"),
            hub_auth=_hub_auth(cfg.get_object("hubAuth")),
            hub_oauth_client_secret=cfg.get("hubOAuthClientSecret"),
        )
    if kind == KIND_PRODUCTION_GRANT:
        return ProductionGrantStackConfig(
            environment=environment,
            region=region,
            production_account_id=str(cfg.require("productionAccountId")),
            broker_role_arn=cfg.require("brokerRoleArn"),
            external_id=cfg.require("externalId"),
            parquet_prefixes=_prefixes(cfg.require_object("parquetPrefixes")),
            audit_bucket_name=cfg.require("auditBucketName"),
            audit_kms_key_arn=cfg.require("auditKmsKeyArn"),
            data_kms_key_arns=tuple(cfg.get_object("dataKmsKeyArns") or ()),
            source_vpc_endpoint_ids=tuple(cfg.get_object("sourceVpcEndpointIds") or ()),
            deploy_role_arn=cfg.get("deployRoleArn"),
            read_only_role_name=cfg.get("readOnlyRoleName") or "",
            trail_name=cfg.get("trailName") or "",
        )
    raise InfraConfigError(f"dataroom:kind must be one of {', '.join(STACK_KINDS)}, not {kind!r}")
