import json


def test_usage_lands_in_the_upcoming_invoice(api, org, tokens, pinned_clock):
    admin = {"Authorization": f"Bearer {tokens['admin']}", "Content-Type": "application/json"}
    events = [{"id": f"e{i}", "org": org, "app": "web", "meter": "egress", "quantity": 1.5, "region": "fra",
               "timestamp": "2026-11-15T11:00:00Z"} for i in range(3)]
    response = api.http.post("/v1/usage", headers=admin, body=json.dumps({"events": events}))
    assert response.status_code == 200, response.body
    assert response.json_body["counts"] == {"accepted": 3, "duplicate": 0, "conflict": 0, "rejected": 0}
    upcoming = api.http.get(f"/v1/orgs/{org}/invoices/upcoming", headers=admin).json_body
    assert upcoming["lines"][0]["quantity"] == "4.5"
    assert upcoming["total"]["cents"] == 9
