# METADATA
# title: Approved project scope
# description: The user is a member of an approved, unexpired project.
package dataroom.query.project

import rego.v1

# METADATA
# title: Project reasons
# description: Why the user may not query within this project.
reasons(req) := missing(req) | membership(req) | status(req) | expiry(req)

missing(req) := {r |
	req.project == null
	r := {"code": "no_project", "message": "queries run within an approved project: name one with --project"}
}

membership(req) := {r |
	req.project != null
	not req.user.name in req.project.members
	r := {"code": "not_a_member", "message": sprintf("user %s is not a member of project %s", [req.user.name, req.project.id])}
}

status(req) := {r |
	req.project != null
	req.project.status != "approved"
	r := {"code": "project_not_approved", "message": sprintf("project %s is %s, not approved", [req.project.id, req.project.status])}
}

expiry(req) := {r |
	req.project != null
	req.project.expires < req.today
	r := {"code": "project_expired", "message": sprintf("project %s expired on %s", [req.project.id, req.project.expires])}
}
