-- A stored event that waits for another to be applied first (a refund or
-- dispute whose payment is not booked yet) names the charge it waits for,
-- so booking that charge's payment makes it due at once.
ALTER TABLE stripe_events ADD COLUMN waits_for TEXT;
CREATE INDEX stripe_events_waits_for ON stripe_events (waits_for) WHERE waits_for IS NOT NULL;
