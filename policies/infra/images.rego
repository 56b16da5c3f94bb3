package dataroom.infra.images

import data.dataroom.infra.kubernetes_lib as k
import data.dataroom.infra.lib
import rego.v1

# "registry/repo@sha256:<64 hex>" or "registry/repo:<tag>" with a tag other than latest.
pinned(image) if regex.match(`@sha256:[0-9a-f]{64}$`, image)

pinned(image) if {
	not contains(image, "@")
	parts := split(image, "/")
	last := parts[count(parts) - 1]
	contains(last, ":")
	tag := split(last, ":")[1]
	tag != ""
	tag != "latest"
}

# The chart's {name, tag} image blocks as one string (a digest tag renders name@sha256:tag).
chart_image(block) := sprintf("%s:%s", [block.name, block.tag]) if not endswith(block.name, "@sha256")

chart_image(block) := sprintf("%s:%s", [block.name, block.tag]) if endswith(block.name, "@sha256")

chart_pinned(block) if {
	endswith(block.name, "@sha256")
	regex.match(`^[0-9a-f]{64}$`, block.tag)
}

chart_pinned(block) if {
	not endswith(block.name, "@sha256")
	pinned(chart_image(block))
}

workload_images(resources) := [[w, c.image] |
	some w in k.workloads(resources)
	some c in array.concat(object.get(k.pod_spec(w), "containers", []), object.get(k.pod_spec(w), "initContainers", []))
]

workload_violations(resources) := {lib.violation("images", w, msg) |
	some [w, image] in workload_images(resources)
	not pinned(image)
	msg := sprintf("workload \"%s\" runs image %s, which is not pinned: use a tag other than latest, or a digest, from the stack config", [w.name, image])
}

release_blocks(r) := [[where, block] |
	some [where, block] in [
		["hub.image", object.get(object.get(k.values(r), "hub", {}), "image", null)],
		["proxy.chp.image", object.get(object.get(object.get(k.values(r), "proxy", {}), "chp", {}), "image", null)],
		["singleuser.image", object.get(k.singleuser_values(r), "image", null)],
	]
]

release_violations(resources) := {lib.violation("images", r, msg) |
	some r in k.hub_releases(resources)
	some [where, block] in release_blocks(r)
	not chart_pinned_or_object(block)
	msg := sprintf("JupyterHub release \"%s\": %s is not pinned (a tag other than latest, or a digest, from the stack config; the chart's defaults pull from the internet)", [r.name, where])
}

chart_pinned_or_object(block) if {
	is_object(block)
	chart_pinned(block)
}

# (Messages quote only values from the input: regopy 1.5.2 writes a policy's own string literals
# into its JSON output unescaped when they pass through sprintf.)
spawner_violations(resources) := {lib.violation("images", r, msg) |
	some r in k.hub_releases(resources)
	image := k.kubespawner(r).image
	not pinned(image)
	msg := sprintf("JupyterHub release \"%s\": single-user image %s (hub.config.KubeSpawner.image) is not pinned", [r.name, image])
} | {lib.violation("images", r, msg) |
	some r in k.hub_releases(resources)
	not k.kubespawner(r).image
	msg := sprintf("JupyterHub release \"%s\": no single-user image (hub.config.KubeSpawner.image): KubeSpawner's default is pulled from the internet and not pinned", [r.name])
}

# METADATA
# title: Images are pinned by tag or digest
# description: >-
#   Every container of the room's workloads, the chart's hub, proxy and single-user images and
#   KubeSpawner's image name a tag other than latest, or a digest, as set in the stack config.
violations(req) := (workload_violations(req.resources) | release_violations(req.resources)) | spawner_violations(req.resources)
