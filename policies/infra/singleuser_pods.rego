package dataroom.infra.singleuser_pods

import data.dataroom.infra.kubernetes_lib as k
import data.dataroom.infra.lib
import rego.v1

allowed_env := {"DATAROOM_BROKER_URL"}

v(release, msg) := lib.violation("singleuser_pods", release, msg)

token_violations(resources) := {v(r, msg) |
	some r in k.hub_releases(resources)
	object.get(k.kubespawner(r), "automount_service_account_token", null) != false
	msg := sprintf("JupyterHub release \"%s\": single-user pods would mount a Kubernetes service-account token; set hub.config.KubeSpawner.automount_service_account_token false", [r.name])
}

iam_violations(resources) := {v(r, msg) |
	some r in k.hub_releases(resources)
	name := k.kubespawner(r).service_account
	some account in k.account_named(resources, name)
	k.has_irsa(account)
	msg := sprintf("JupyterHub release \"%s\": single-user pods run as ServiceAccount \"%s\", which carries IAM role %s; notebook servers have no AWS identity", [r.name, name, k.irsa_role(account)])
}

root_violations(resources) := {v(r, msg) |
	some r in k.hub_releases(resources)
	ks := k.kubespawner(r)
	object.get(ks, "uid", 0) == 0
	msg := sprintf("JupyterHub release \"%s\": single-user pods run as root (hub.config.KubeSpawner.uid); give them a non-zero uid", [r.name])
}

# (Each message is its own format string: regopy 1.5.2 writes a policy's string literals passed as
# sprintf arguments into its JSON output unescaped; only input values may be arguments.)
privilege_violations(resources) := ((privileged(resources) | escalation(resources)) | kept_capabilities(resources)) | added_capabilities(resources)

privileged(resources) := {v(r, msg) |
	some r in k.hub_releases(resources)
	object.get(k.kubespawner(r), "privileged", false) != false
	msg := sprintf("JupyterHub release \"%s\": single-user pods are privileged", [r.name])
}

escalation(resources) := {v(r, msg) |
	some r in k.hub_releases(resources)
	object.get(k.kubespawner(r), "allow_privilege_escalation", null) != false
	msg := sprintf("JupyterHub release \"%s\": single-user pods may escalate privileges (allow_privilege_escalation must be false)", [r.name])
}

capabilities(r) := object.get(object.get(k.kubespawner(r), "container_security_context", {}), "capabilities", {})

kept_capabilities(resources) := {v(r, msg) |
	some r in k.hub_releases(resources)
	not "ALL" in object.get(capabilities(r), "drop", [])
	msg := sprintf("JupyterHub release \"%s\": single-user pods keep Linux capabilities (container_security_context.capabilities.drop must include ALL)", [r.name])
}

added_capabilities(resources) := {v(r, msg) |
	some r in k.hub_releases(resources)
	count(object.get(capabilities(r), "add", [])) > 0
	msg := sprintf("JupyterHub release \"%s\": single-user pods add Linux capabilities", [r.name])
}

host_path_violations(resources) := {v(r, msg) |
	some r in k.hub_releases(resources)
	some volume in host_path_volumes(r)
	msg := sprintf("JupyterHub release \"%s\": single-user pods mount host path %s; a notebook server sees nothing of its node", [r.name, volume.hostPath.path])
}

host_path_volumes(r) := [volume |
	some volume in array.concat(
		object.get(k.kubespawner(r), "volumes", []),
		object.get(object.get(k.singleuser_values(r), "storage", {}), "extraVolumes", []),
	)
	volume.hostPath
]

limit_violations(resources) := {v(r, msg) |
	some r in k.hub_releases(resources)
	object.get(k.kubespawner(r), "cpu_limit", null) == null
	msg := sprintf("JupyterHub release \"%s\": single-user pods have no cpu_limit; one notebook could starve the node the broker runs on", [r.name])
} | {v(r, msg) |
	some r in k.hub_releases(resources)
	object.get(k.kubespawner(r), "mem_limit", null) == null
	msg := sprintf("JupyterHub release \"%s\": single-user pods have no mem_limit; one notebook could starve the node the broker runs on", [r.name])
}

env_violations(resources) := {v(r, msg) |
	some r in k.hub_releases(resources)
	some name in object.keys(object.get(k.kubespawner(r), "environment", {}))
	not name in allowed_env
	msg := sprintf("JupyterHub release \"%s\": single-user pods get %s; only DATAROOM_BROKER_URL (and JupyterHub's own variables) reach a server", [r.name, name])
}

env_keep_violations(resources) := {v(r, msg) |
	some r in k.hub_releases(resources)
	count(object.get(k.kubespawner(r), "env_keep", ["unset"])) > 0
	msg := sprintf("JupyterHub release \"%s\": hub.config.KubeSpawner.env_keep must be [] so nothing of the hub's environment reaches a server", [r.name])
}

chart_policy_violations(resources) := {v(r, msg) |
	some r in k.hub_releases(resources)
	object.get(object.get(k.singleuser_values(r), "networkPolicy", {}), "enabled", true) != false
	msg := sprintf("JupyterHub release \"%s\": the chart's single-user NetworkPolicy is on (its defaults allow the internet); set singleuser.networkPolicy.enabled false, the room declares its own", [r.name])
}

no_download_arg := "--ServerApp.jpserver_extensions=dataroom.hub.no_download=True"

no_download_violations(resources) := {v(r, msg) |
	some r in k.hub_releases(resources)
	not no_download_arg in object.get(k.kubespawner(r), "args", [])
	msg := sprintf("JupyterHub release \"%s\": single-user servers do not load the no-download extension (hub.config.KubeSpawner.args)", [r.name])
} | {v(r, msg) |
	some r in k.hub_releases(resources)
	object.get(k.kubespawner(r), "disable_user_config", false) != true
	msg := sprintf("JupyterHub release \"%s\": single-user servers read config files from the user's home, which could unload the no-download extension; set disable_user_config true", [r.name])
}

missing_violations(req) := {msg |
	req.stack.kind == "data-room"
	count(k.hub_releases(req.resources)) == 0
	msg := {
		"policy": "singleuser_pods",
		"resource": req.stack.name,
		"type": "pulumi:pulumi:Stack",
		"message": "data-room stack deploys no JupyterHub release (chart jupyterhub)",
	}
}

# METADATA
# title: Single-user pods have no identity, no privileges and no host paths
# description: >-
#   In the JupyterHub chart's KubeSpawner settings: no service-account token, a ServiceAccount
#   without an IAM role, a non-root uid, no privilege, all capabilities dropped, no host paths,
#   CPU and memory limits, only DATAROOM_BROKER_URL added to the environment and nothing kept
#   from the hub's; the no-download extension loaded and no user config read; the chart's
#   permissive single-user NetworkPolicy off.
violations(req) := (((((((((token_violations(req.resources) | iam_violations(req.resources)) | root_violations(req.resources)) | privilege_violations(req.resources)) | host_path_violations(req.resources)) | limit_violations(req.resources)) | env_violations(req.resources)) | env_keep_violations(req.resources)) | chart_policy_violations(req.resources)) | no_download_violations(req.resources)) | missing_violations(req)
