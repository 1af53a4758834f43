-- A tiny shop on MariaDB for deploy/compose.yaml: source `nantes` in deploy/panorama.compose.yaml.
-- The official mariadb image runs this once, as root, when its volume is empty; the gateway
-- reads it as MARIADB_USER, who is granted every privilege on MARIADB_DATABASE (shop).
-- French column names on purpose: each shop keeps its own schema, the config maps it.

USE shop;

CREATE TABLE clients (
    id            INT PRIMARY KEY,
    prenom        VARCHAR(80) NOT NULL,
    nom           VARCHAR(80) NOT NULL,
    courriel      VARCHAR(200),
    telephone     VARCHAR(40),
    rue           VARCHAR(200),
    code_postal   VARCHAR(10),
    ville         VARCHAR(80),
    carte         VARCHAR(20)
) CHARACTER SET utf8mb4;

CREATE TABLE ventes (
    id         INT PRIMARY KEY,
    client_id  INT NOT NULL,
    montant    DECIMAL(10, 2) NOT NULL,
    date_vente DATETIME NOT NULL,
    statut     VARCHAR(12) NOT NULL,
    INDEX ventes_client_id (client_id),
    FOREIGN KEY (client_id) REFERENCES clients (id)
) CHARACTER SET utf8mb4;

INSERT INTO clients (id, prenom, nom, courriel, telephone, rue, code_postal, ville, carte) VALUES
    (1, 'Hugo',   'MOREAU',  'hugo.moreau@example.com',  '06 55 44 33 22', '4 rue Crébillon',  '44000', 'Nantes', 'NA-0005'),
    (2, 'Marie',  'DURAND',  'marie.durand@example.com', '06 98 76 54 32', '17 quai de la Fosse', '44000', 'Nantes', NULL),
    (3, 'Jean',   'DUPONT',  'j.dupont@example.com',     '+33612345678',   '3 rue Mercière',   '69002', 'Lyon',   NULL),
    (4, 'Camille','ROUSSEAU','camille.rousseau@example.fr', '02 40 11 22 33', '9 allée Flesselles', '44000', 'Nantes', 'NA-0011');

INSERT INTO ventes (id, client_id, montant, date_vente, statut) VALUES
    (501, 1, 18.50, '2026-01-05 10:00:00', 'payee'),
    (502, 1, 42.00, '2026-02-11 17:20:00', 'payee'),
    (503, 2, 65.90, '2026-02-28 09:10:00', 'attente'),
    (504, 3,  7.80, '2026-03-01 08:05:00', 'payee'),
    (505, 4, 23.40, '2026-03-04 12:45:00', 'annulee');
