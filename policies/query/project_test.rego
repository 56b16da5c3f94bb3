package dataroom.query.project_test

import rego.v1

import data.dataroom.query.project

proj(overrides) := object.union({"id": "p1", "members": ["alice"], "status": "approved", "expires": "2030-01-01"}, overrides)

test_allow_member_of_approved_project if {
	project.reasons({"user": {"name": "alice"}, "project_id": "p1", "project": proj({}), "today": "2026-01-01"}) == set()
}

not_available_p1 := {{"code": "project_not_available", "message": "project 'p1' does not exist or you are not a member of it: see your projects with `dataroom project list` or room.projects()"}}

test_deny_non_member if {
	project.reasons({"user": {"name": "mallory"}, "project_id": "p1", "project": proj({}), "today": "2026-01-01"}) == not_available_p1
}

test_deny_unknown_project_same_as_non_member if {
	project.reasons({"user": {"name": "mallory"}, "project_id": "p1", "project": null, "today": "2026-01-01"}) == not_available_p1
}

test_deny_non_member_of_revoked_project_says_only_not_available if {
	project.reasons({"user": {"name": "mallory"}, "project_id": "p1", "project": proj({"status": "revoked", "expires": "2025-01-01"}), "today": "2026-01-01"}) == not_available_p1
}

test_deny_expired if {
	project.reasons({"user": {"name": "alice"}, "project_id": "p1", "project": proj({"expires": "2025-12-31"}), "today": "2026-01-01"}) == {{"code": "project_expired", "message": "project p1 expired on 2025-12-31"}}
}

test_deny_revoked if {
	project.reasons({"user": {"name": "alice"}, "project_id": "p1", "project": proj({"status": "revoked"}), "today": "2026-01-01"}) == {{"code": "project_not_approved", "message": "project p1 is revoked, not approved"}}
}

test_deny_no_project if {
	codes := {r.code | some r in project.reasons({"user": {"name": "alice"}, "project_id": "", "project": null, "today": "2026-01-01"})}
	codes == {"no_project"}
}

# main.rego asks standing(req) only once unavailable(req) is empty, i.e. of members.
test_standing_of_a_member_gives_both_reasons if {
	reasons := project.standing({"user": {"name": "alice"}, "project_id": "p1", "project": proj({"status": "revoked", "expires": "2025-12-31"}), "today": "2026-01-01"})
	{r.code | some r in reasons} == {"project_not_approved", "project_expired"}
}

test_status_and_expiry_say_nothing_to_a_non_member if {
	req := {"user": {"name": "mallory"}, "project_id": "p1", "project": proj({"status": "revoked", "expires": "2025-12-31"}), "today": "2026-01-01"}
	project.status(req) == set()
	project.expiry(req) == set()
}

test_a_member_without_a_project_id_has_no_project if {
	codes := {r.code | some r in project.unavailable({"user": {"name": "alice"}, "project": proj({}), "today": "2026-01-01"})}
	codes == {"no_project"}
}
