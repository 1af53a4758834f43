"""Word lists the demo world is drawn from: names, streets, companies and CRM texts."""

from __future__ import annotations

GIVEN_NAMES: dict[str, tuple[str, ...]] = {
    "FR": (
        "Camille", "Hélène", "Léa", "Chloé", "Zoé", "Inès", "Noémie", "Élodie", "Anaïs", "Cécile",
        "Agnès", "Gaëlle", "Manon", "Julie", "Sarah", "Claire", "Sophie", "Marie", "Lucie", "Emma",
        "Jérôme", "François", "Stéphane", "Benoît", "Mathéo", "Loïc", "Théo", "Hugo", "Louis",
        "Lucas", "Nicolas", "Julien", "Thomas", "Antoine", "Pierre", "Jean", "Paul", "Arthur",
        "Maxime", "Rémi", "Gaël", "Aurélien", "Noël", "Yanis", "Karim", "Mélanie", "Océane",
    ),
    "GB": (
        "Oliver", "George", "Harry", "Jack", "Jacob", "Noah", "Charlie", "Thomas", "Oscar",
        "William", "James", "Amelia", "Olivia", "Isla", "Emily", "Poppy", "Ava", "Isabella",
        "Jessica", "Lily", "Sophie", "Grace", "Siobhan", "Niamh", "Eleanor", "Hannah", "Priya",
        "Aisha", "Rohan", "Callum", "Fiona", "Rhys", "Megan", "Daniel", "Samuel", "Chloe",
    ),
    "DE": (
        "Lukas", "Leon", "Finn", "Jonas", "Paul", "Felix", "Maximilian", "Elias", "Jürgen",
        "Klaus", "Stefan", "Andreas", "Michael", "Thomas", "Sabine", "Ursula", "Anna", "Emma",
        "Mia", "Hannah", "Sophie", "Lea", "Lena", "Marie", "Jörg", "Björn", "Sören", "Käthe",
        "Günter", "Dörte", "Jana", "Katrin", "Birgit", "Petra", "Monika", "Heike", "Till",
    ),
}

FAMILY_NAMES: dict[str, tuple[str, ...]] = {
    "FR": (
        "Martin", "Bernard", "Dubois", "Thomas", "Robert", "Richard", "Petit", "Durand", "Leroy",
        "Moreau", "Simon", "Laurent", "Lefèvre", "Michel", "Garcia", "David", "Bertrand", "Roux",
        "Vincent", "Fournier", "Morel", "Girard", "André", "Mercier", "Dupont", "Lambert",
        "Bonnet", "François", "Legrand", "Garnier", "Faure", "Rousseau", "Blanc", "Guérin",
        "Henry", "Roussel", "Perrin", "Morin", "Mathieu", "Clément", "Gauthier", "Dumont",
        "Fontaine", "Chevalier", "Robin", "Masson", "Gérard", "Nguyen", "Boyer", "Lemaire",
        "Duval", "Joly", "Roche", "Noël", "Meunier", "Marchand", "Dufour", "Blanchard", "Barbier",
        "Brunet", "Leroux", "Colin", "Renard", "Arnaud", "Caron", "Aubert", "Giraud", "Leclerc",
        "Vidal", "Bourgeois", "Renaud", "Picard", "Lacroix", "Fabre", "Dupuis", "Rivière",
        "Le Gall", "Ménard", "Fleury", "Deschamps", "Prévost", "Carré", "Da Silva", "Benali",
    ),
    "GB": (
        "Smith", "Jones", "Williams", "Taylor", "Brown", "Davies", "Evans", "Wilson", "Johnson",
        "Roberts", "Robinson", "Thompson", "Wright", "Walker", "White", "Edwards", "Hughes",
        "Green", "Hall", "Lewis", "Harris", "Clarke", "Patel", "Jackson", "Wood", "Turner",
        "Cooper", "Hill", "Ward", "Morris", "Moore", "Clark", "King", "Baker", "Harrison",
        "Morgan", "Allen", "Scott", "Phillips", "Watson", "Parker", "Price", "Bennett", "Young",
        "Griffiths", "Mitchell", "Kelly", "Cook", "Carter", "Bailey", "Collins", "Bell", "Shaw",
        "Murphy", "Khan", "Marshall", "Simpson", "Ellis", "Singh", "Foster", "Chapman", "Webb",
        "O'Brien", "O'Connor", "McDonald", "Fletcher", "Hussain", "Lloyd", "Russell", "Fisher",
    ),
    "DE": (
        "Müller", "Schmidt", "Schneider", "Fischer", "Weber", "Meyer", "Wagner", "Becker",
        "Schulz", "Hoffmann", "Schäfer", "Koch", "Bauer", "Richter", "Klein", "Wolf", "Schröder",
        "Neumann", "Schwarz", "Zimmermann", "Braun", "Krüger", "Hartmann", "Lange", "Werner",
        "Krause", "Lehmann", "Schulze", "Köhler", "Herrmann", "König", "Walter", "Huber",
        "Kaiser", "Fuchs", "Peters", "Scholz", "Möller", "Weiß", "Jung", "Hahn", "Schubert",
        "Vogel", "Friedrich", "Keller", "Günther", "Berger", "Winkler", "Roth", "Beck", "Lorenz",
        "Baumann", "Albrecht", "Schuster", "Böhm", "Winter", "Krämer", "Vogt", "Jäger", "Otto",
        "Sommer", "Groß", "Seidel", "Brandt", "Haas", "Yılmaz", "Nowak",
    ),
}

# Given names read as feminine (for the civilité / Anrede columns).
FEMININE: frozenset[str] = frozenset({
    "Camille", "Hélène", "Léa", "Chloé", "Zoé", "Inès", "Noémie", "Élodie", "Anaïs", "Cécile",
    "Agnès", "Gaëlle", "Manon", "Julie", "Sarah", "Claire", "Sophie", "Marie", "Lucie", "Emma",
    "Mélanie", "Océane", "Amelia", "Olivia", "Isla", "Emily", "Poppy", "Ava", "Isabella",
    "Jessica", "Lily", "Grace", "Siobhan", "Niamh", "Eleanor", "Hannah", "Priya", "Aisha",
    "Fiona", "Megan", "Chloe", "Sabine", "Ursula", "Anna", "Mia", "Lea", "Lena", "Käthe",
    "Dörte", "Jana", "Katrin", "Birgit", "Petra", "Monika", "Heike",
})

# (street without number, postcode, city); a number is drawn for each address.
STREETS: dict[str, tuple[tuple[str, str, str], ...]] = {
    "FR": (
        ("rue Cler", "75007", "Paris"), ("rue de Grenelle", "75007", "Paris"),
        ("avenue Bosquet", "75007", "Paris"), ("rue Saint-Dominique", "75007", "Paris"),
        ("rue du Bac", "75007", "Paris"), ("boulevard Saint-Germain", "75005", "Paris"),
        ("rue Mouffetard", "75005", "Paris"), ("rue Oberkampf", "75011", "Paris"),
        ("rue de Charonne", "75011", "Paris"), ("rue des Martyrs", "75009", "Paris"),
        ("avenue de la Motte-Picquet", "75015", "Paris"), ("rue du Commerce", "75015", "Paris"),
        ("rue de Rivoli", "75004", "Paris"), ("rue Lepic", "75018", "Paris"),
        ("avenue Jean Jaurès", "92130", "Issy-les-Moulineaux"),
        ("rue de la Paroisse", "78000", "Versailles"),
        ("avenue Victor Hugo", "92100", "Boulogne-Billancourt"),
    ),
    "GB": (
        ("Baker Street", "NW1 6XE", "London"), ("Portobello Road", "W11 2DY", "London"),
        ("Camden High Street", "NW1 7JE", "London"), ("Brick Lane", "E1 6QR", "London"),
        ("King's Road", "SW3 4RP", "London"), ("Upper Street", "N1 0PN", "London"),
        ("Electric Avenue", "SW9 8JX", "London"), ("Abbey Road", "NW8 9AY", "London"),
        ("Old Kent Road", "SE1 5AJ", "London"), ("Marylebone High Street", "W1U 4QW", "London"),
        ("Northcote Road", "SW11 1NP", "London"), ("Church Street", "N16 0JL", "London"),
        ("High Street", "KT1 1LL", "Kingston upon Thames"), ("London Road", "CR0 2TA", "Croydon"),
    ),
    "DE": (
        ("Kastanienallee", "10435", "Berlin"), ("Oranienstraße", "10999", "Berlin"),
        ("Schönhauser Allee", "10437", "Berlin"), ("Torstraße", "10119", "Berlin"),
        ("Kantstraße", "10623", "Berlin"), ("Bergmannstraße", "10961", "Berlin"),
        ("Friedrichstraße", "10117", "Berlin"), ("Karl-Marx-Allee", "10243", "Berlin"),
        ("Kollwitzstraße", "10405", "Berlin"), ("Sonnenallee", "12047", "Berlin"),
        ("Simon-Dach-Straße", "10245", "Berlin"), ("Weserstraße", "12045", "Berlin"),
        ("Breite Straße", "14467", "Potsdam"),
    ),
}

# The firm whose staff give its switchboard number as their phone (a hostile input).
SWITCHBOARD_COMPANY = "Cabinet Lefort & Associés"

# Wholesale customers of each shop: (name on the till, legal name).
ORGANIZATIONS: dict[str, tuple[tuple[str, str], ...]] = {
    "FR": (
        ("Brasserie du Marché", "Brasserie du Marché SAS"),
        ("Hôtel des Invalides", "Hôtel des Invalides SARL"),
        ("Traiteur Lemoine", "Traiteur Lemoine SAS"),
        ("Café de la Gare", "Café de la Gare SARL"),
    ),
    "GB": (
        ("The Crown & Anchor", "Crown & Anchor Pubs Ltd"),
        ("Greenwich Deli", "Greenwich Deli Ltd"),
        ("Harbour Café", "Harbour Café Ltd"),
        ("St Mary's School Kitchen", "St Mary's Catering Services Ltd"),
    ),
    "DE": (
        ("Café Sonnenschein", "Café Sonnenschein GmbH"),
        ("Hotel Adler", "Hotel Adler Berlin GmbH"),
        ("Kantine am Kanal", "Kantine am Kanal UG"),
        ("Kita Pusteblume", "Pusteblume Kinderbetreuung gGmbH"),
    ),
}

# Companies of CRM-only prospects (event planners who asked for quotes).
EVENT_COMPANIES: tuple[str, ...] = (
    "Lumière Événements", "Bright Days Weddings Ltd", "Feierwerk Events GmbH", "Atelier Mariage",
    "Cityscape Conferences Ltd",
)

# Reasons for a refund or credit note, per shop language.
REFUND_REASONS: dict[str, tuple[str, ...]] = {
    "london": ("Damaged in transit", "Late delivery", "Wrong order", "Quality complaint"),
    "berlin": ("Ware beschädigt", "Lieferung verspätet", "Falsche Bestellung", "Reklamation"),
}

# CRM engagements: notes are a body; the others (title, body). "{given}" is the contact's
# given name, "{shop}" the shop they buy at.
NOTES: tuple[str, ...] = (
    "Ordered a three-tier wedding cake for 120 guests: lemon sponge, raspberry filling. "
    "Deposit of 30% paid.",
    "Asked whether the rye loaf exists gluten-free. Suggested the buckwheat loaf and warned "
    "about cross-contamination in the bakehouse.",
    "Complained that Saturday's order of 40 croissants arrived at 10:40 instead of 8:00. "
    "Offered a 15% voucher.",
    "Allergy on file: tree nuts. Check every special order with the baker.",
    "Prefers to collect at the {shop} shop; call before substituting anything.",
    "Asked to merge loyalty points from two shops. Not possible yet; explained and apologised.",
    "Regular Sunday order: two baguettes tradition and one pain de campagne.",
    "Birthday cake for a seven-year-old, unicorn theme, chocolate sponge, collected on time.",
    "Wants an invoice with the company name for an office breakfast every first Monday.",
    "Vegan customer: asked for the list of pastries made without butter or eggs.",
    "Lost the loyalty card; a new card was issued and the points carried over by hand.",
    "Happy with the galette des rois; will order six again next January.",
)
CALLS: tuple[tuple[str, str], ...] = (
    ("Late delivery complaint", "{given} called: the order arrived two hours late. "
     "Apologised and refunded the delivery fee."),
    ("Wedding cake follow-up", "Confirmed flavours and delivery time for the wedding cake; "
     "venue access from 9:00."),
    ("Gluten-free question", "{given} asked which breads are safe for a coeliac guest. "
     "Sent the allergen sheet by e-mail."),
    ("Catering quote", "Quote requested for 200 mini viennoiseries for a seminar."),
    ("Lost loyalty card", "Card lost; asked for the points to be moved to a new card."),
    ("Order change", "Changed Friday's order from 20 to 35 sourdough loaves."),
    ("Missing item", "One tarte au citron missing from the box; a credit note was agreed."),
)
EMAILS: tuple[tuple[str, str], ...] = (
    ("Your wedding cake order", "Dear {given}, thank you for your order. Please find the "
     "tasting dates attached."),
    ("Re: gluten-free bread", "Hello {given}, our buckwheat loaf contains no wheat, but it is "
     "baked in a bakehouse that handles wheat flour."),
    ("Sorry about your late delivery", "Dear {given}, we are sorry your order was late. "
     "A 15% voucher has been added to your loyalty card."),
    ("Christmas pre-order: bûche de Noël", "Hello {given}, pre-orders for the bûche de Noël "
     "are open until 15 December."),
    ("Quote for your event", "Dear {given}, please find our quote for 200 mini viennoiseries."),
    ("Allergen information", "Hello {given}, here is the allergen sheet for all our pastries."),
)
MEETINGS: tuple[tuple[str, str], ...] = (
    ("Wedding cake tasting", "Tasting of three sponges and two fillings with {given}; "
     "chose lemon and raspberry."),
    ("Catering menu for the company party", "Agreed a menu of savoury and sweet canapés "
     "for 80 people."),
    ("Birthday cake design", "Sketched the design with {given}; two tiers, fresh flowers."),
    ("Bakery visit", "{given} visited the bakehouse at {shop} with a school class."),
)
