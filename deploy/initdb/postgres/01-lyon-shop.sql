-- A tiny shop on PostgreSQL for deploy/compose.yaml: source `lyon` in deploy/panorama.compose.yaml.
-- The official postgres image runs this once, as POSTGRES_USER in POSTGRES_DB, when its volume
-- is empty. Fictitious people; some share an e-mail, phone or card with the other shop and with
-- the built-in contacts of `panorama crm-server`, so Panorama links them into one customer.

CREATE TABLE customers (
    id          integer PRIMARY KEY,
    first_name  text NOT NULL,
    last_name   text NOT NULL,
    email       text,
    phone       text,
    street      text,
    postcode    text,
    city        text,
    card_number text,
    updated_at  timestamptz NOT NULL DEFAULT now()
);

CREATE TABLE orders (
    id          integer PRIMARY KEY,
    customer_id integer NOT NULL REFERENCES customers (id),
    total_cents integer NOT NULL,
    currency    char(3) NOT NULL DEFAULT 'EUR',
    ordered_at  timestamptz NOT NULL,
    status      text NOT NULL CHECK (status IN ('paid', 'pending', 'cancelled'))
);
CREATE INDEX orders_customer_id ON orders (customer_id);

INSERT INTO customers (id, first_name, last_name, email, phone, street, postcode, city, card_number) VALUES
    (1, 'Jean',   'Dupont',  'jean.dupont@example.com', '06 12 34 56 78', '3 rue Mercière',      '69002', 'Lyon', 'LY-0001'),
    (2, 'Paul',   'Martin',  'paul.martin@example.org', NULL,             '12 quai Saint-Vincent', '69001', 'Lyon', 'LY 0003'),
    (3, 'Inès',   'Bernard', 'ines.bernard@example.net', '07 45 12 78 90', '8 place Bellecour',  '69002', 'Lyon', 'LY-0007'),
    (4, 'Lucas',  'Petit',   'lucas.petit@example.com', '+33 4 78 00 11 22', '21 cours Lafayette', '69003', 'Lyon', NULL);

INSERT INTO orders (id, customer_id, total_cents, currency, ordered_at, status) VALUES
    (1001, 1, 1250, 'EUR', '2026-01-10 08:15:00+01', 'paid'),
    (1002, 1, 4800, 'EUR', '2026-02-14 16:40:00+01', 'paid'),
    (1003, 2,  890, 'EUR', '2026-02-20 07:55:00+01', 'pending'),
    (1004, 3, 3600, 'EUR', '2026-03-02 11:05:00+01', 'paid'),
    (1005, 4,  420, 'EUR', '2026-03-05 09:30:00+01', 'cancelled');
