-- How the value of a grant was captured: 'lex' (callvault's Lambda, bound
-- to its contact and field) or 'keypad' (Amazon Connect's Store customer
-- input, bound to nothing).
ALTER TABLE reveal_grants ADD COLUMN capture TEXT NOT NULL DEFAULT 'lex';
