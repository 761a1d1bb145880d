-- wrk script: every request joins the waiting room as a new visitor (no cookie, no visitor_token).
-- Usage: wrk -s scripts/wrk-join.lua http://127.0.0.1:8080/api/events/<event-id>/queue
wrk.method = "POST"
wrk.headers["Content-Length"] = "0"
