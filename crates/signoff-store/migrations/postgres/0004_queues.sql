-- The group a request is routed to (its queue), kept in step with the document.
ALTER TABLE requests ADD COLUMN route_group TEXT;
CREATE INDEX requests_group ON requests (route_group, status, id);
