package dataroom.infra.images_test

import data.dataroom.infra.images
import rego.v1

test_pinned_images if {
	images.pinned("222222222222.dkr.ecr.eu-west-1.amazonaws.com/dataroom:0.1.0")
	images.pinned("registry:5000/team/dataroom@sha256:0123456789abcdef0123456789abcdef0123456789abcdef0123456789abcdef")
	not images.pinned("222222222222.dkr.ecr.eu-west-1.amazonaws.com/dataroom:latest")
	not images.pinned("222222222222.dkr.ecr.eu-west-1.amazonaws.com/dataroom")
	not images.pinned("registry:5000/dataroom")
}

im_release(values) := {"type": "kubernetes:helm.sh/v3:Release", "name": "hub-release", "id": "r", "arn": "", "props": {"chart": "jupyterhub", "values": values}}

im_block := {"name": "ecr/k8s-hub", "tag": "4.3.1"}

im_req(resources) := {"stack": {"name": "dev", "kind": "data-room"}, "resources": resources}

test_allow_pinned_release if {
	values := {"hub": {"image": im_block, "config": {"KubeSpawner": {"image": "ecr/dataroom:0.1.0"}}}, "proxy": {"chp": {"image": im_block}}, "singleuser": {"image": {"name": "ecr/dataroom@sha256", "tag": "0123456789abcdef0123456789abcdef0123456789abcdef0123456789abcdef"}}}
	images.violations(im_req([im_release(values)])) == set()
}

test_deny_chart_default_and_latest if {
	values := {"hub": {"config": {"KubeSpawner": {"image": "ecr/dataroom:latest"}}}, "proxy": {"chp": {"image": im_block}}, "singleuser": {"image": {"name": "ecr/dataroom", "tag": "latest"}}}
	found := {v.message | some v in images.violations(im_req([im_release(values)]))}
	found == {
		`JupyterHub release "hub-release": hub.image is not pinned (a tag other than latest, or a digest, from the stack config; the chart's defaults pull from the internet)`,
		`JupyterHub release "hub-release": singleuser.image is not pinned (a tag other than latest, or a digest, from the stack config; the chart's defaults pull from the internet)`,
		`JupyterHub release "hub-release": single-user image ecr/dataroom:latest (hub.config.KubeSpawner.image) is not pinned`,
	}
}

test_deny_unpinned_workload if {
	w := {"type": "kubernetes:apps/v1:Deployment", "name": "review", "id": "d", "arn": "", "props": {"spec": {"template": {"spec": {"containers": [{"name": "review", "image": "ecr/dataroom"}]}}}}}
	{v.message | some v in images.violations(im_req([w]))} == {`workload "review" runs image ecr/dataroom, which is not pinned: use a tag other than latest, or a digest, from the stack config`}
}

test_deny_release_without_a_single_user_image if {
	values := {"hub": {"image": im_block, "config": {"KubeSpawner": {}}}, "proxy": {"chp": {"image": im_block}}, "singleuser": {"image": im_block}}
	{v.message | some v in images.violations(im_req([im_release(values)]))} == {`JupyterHub release "hub-release": no single-user image (hub.config.KubeSpawner.image): KubeSpawner's default is pulled from the internet and not pinned`}
}
