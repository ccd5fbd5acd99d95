"""The Intercom operations the sandbox serves: operationId -> handler(state, checked request).

A handler returns (status, JSON-ready body or None) or raises state.ApiError. Operations of the
description that are missing here answer 404 and count as violations: the relay should not call
what the sandbox cannot judge.
"""


def _body(checked):
    return checked.body if isinstance(checked.body, dict) else {}


def _contact_id(checked):
    return checked.path_params["contact_id"]


ROUTES = {
    "identifyAdmin": lambda state, r: (200, state.me()),
    "CreateContact": lambda state, r: (200, state.create_contact(_body(r))),
    "UpdateContact": lambda state, r: (200, state.update_contact(_contact_id(r), _body(r))),
    "ShowContact": lambda state, r: (200, state.get_contact(_contact_id(r))),
    "ShowContactByExternalId": lambda state, r: (200, state.find_contact_by_external_id(r.path_params["external_id"])),
    "SearchContacts": lambda state, r: (200, state.search_contacts(_body(r))),
    "DeleteContact": lambda state, r: (200, state.delete_contact_by_id(_contact_id(r))),
    "ArchiveContact": lambda state, r: (200, state.archive_contact(_contact_id(r))),
    "UnarchiveContact": lambda state, r: (200, state.unarchive_contact(_contact_id(r))),
    "lisDataAttributes": lambda state, r: (
        200,
        state.list_data_attributes(r.query.get("model"), r.query.get("include_archived") is True),
    ),
    "createDataAttribute": lambda state, r: (200, state.create_data_attribute(_body(r))),
    "createDataEvent": lambda state, r: (202, state.create_event(_body(r))),
    "lisDataEvents": lambda state, r: (200, state.list_events(r.query)),
    "createOrUpdateCompany": lambda state, r: (200, state.upsert_company(_body(r))),
    "retrieveCompany": lambda state, r: (200, state.find_companies(r.query)),
    "RetrieveACompanyById": lambda state, r: (200, state.get_company(r.path_params["company_id"])),
    "attachContactToACompany": lambda state, r: (200, state.attach_company(_contact_id(r), _body(r))),
    "detachContactFromACompany": lambda state, r: (
        200,
        state.detach_company(_contact_id(r), r.path_params["company_id"]),
    ),
    "createTag": lambda state, r: (200, state.create_tag(_body(r))),
    "listCompaniesForAContact": lambda state, r: (200, state.list_contact_companies(_contact_id(r))),
}
