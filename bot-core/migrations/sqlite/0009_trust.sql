-- Trust (issue 17): a button set offered to one person (a confirmation, a choice, a
-- suggestion) is answered only by them; shared sets (approval cards, one-click
-- rollbacks) by anyone permitted.

ALTER TABLE button_sets ADD COLUMN personal INTEGER NOT NULL DEFAULT 0;
