-- Why a supervisor rejected a request (shown to the requester).
ALTER TABLE decrypt_requests ADD COLUMN decision_note TEXT NOT NULL DEFAULT '';
