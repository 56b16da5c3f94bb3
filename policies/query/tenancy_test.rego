package dataroom.query.tenancy_test

import rego.v1

import data.dataroom.query.tenancy

test_allow_single_tenant if {
	tenancy.reasons({"project": {"id": "p1", "tenants": ["acme"], "multi_tenant": false}, "facts": {"tenants": ["acme"]}}) == set()
}

test_allow_multi_tenant_project if {
	tenancy.reasons({"project": {"id": "p2", "tenants": ["acme", "globex"], "multi_tenant": true}, "facts": {"tenants": ["acme", "globex"]}}) == set()
}

union_of_two := {"project": {"id": "p1", "tenants": ["acme", "globex"], "multi_tenant": false}, "facts": {"tenants": ["acme", "globex"]}}

test_deny_union_of_two_tenants if {
	reasons := tenancy.reasons(union_of_two)
	reasons == {{"code": "cross_tenant", "message": "this query mixes tenants acme, globex; only a multi_tenant project may do that"}}
}

test_deny_tenant_outside_project if {
	reasons := tenancy.reasons({"project": {"id": "p1", "tenants": ["acme"], "multi_tenant": false}, "facts": {"tenants": ["globex"]}})
	reasons == {{"code": "tenant_not_in_project", "message": "tenant globex is not part of project p1"}}
}

test_deny_every_tenant_of_a_project_without_tenants if {
	reasons := tenancy.reasons({"project": {"id": "p1", "multi_tenant": true}, "facts": {"tenants": ["acme", "globex"]}})
	{r.code | some r in reasons} == {"tenant_not_in_project"}
	count(reasons) == 2
}

test_no_project_no_tenant_reasons if {
	tenancy.reasons({"project": null, "facts": {"tenants": ["acme"]}}) == set()
}
