# METADATA
# title: Approved project scope
# description: The user is a member of an approved, unexpired project.
package dataroom.query.project

import rego.v1

# METADATA
# title: Project reasons
# description: Why the user may not query within this project.
reasons(req) := unavailable(req) | status(req) | expiry(req)

# METADATA
# title: Project not available
# description: |
#   One answer for a project that does not exist and one the user is not a member of, so that
#   the answer reveals nothing about projects the user may not use. When it applies, it is the
#   only reason of the decision (see main.rego).
unavailable(req) := set() if {
	named(req) # the common case first: one test each, no comprehension
	member(req)
} else := {{"code": "no_project", "message": "queries run within an approved project: name one with --project"}} if {
	not named(req)
} else := {{"code": "project_not_available", "message": sprintf("project '%s' does not exist or you are not a member of it: see your projects with `dataroom project list` or room.projects()", [req.project_id])}}

named(req) if req.project_id != ""

member(req) if req.user.name in req.project.members

# The project's standing, for a member only: the other reasons would describe a project the user
# may not know about.
status(req) := not_approved(req) if member(req) else := set()

expiry(req) := expired(req) if member(req) else := set()

# METADATA
# title: Project standing
# description: |
#   Why a member may not query within the project now. main.rego asks only once unavailable(req)
#   is empty, which implies membership, so that membership is not tested twice more per decision.
standing(req) := not_approved(req) | expired(req)

not_approved(req) := {r |
	req.project.status != "approved"
	r := {"code": "project_not_approved", "message": sprintf("project %s is %s, not approved", [req.project.id, req.project.status])}
}

expired(req) := {r |
	req.project.expires < req.today
	r := {"code": "project_expired", "message": sprintf("project %s expired on %s", [req.project.id, req.project.expires])}
}
