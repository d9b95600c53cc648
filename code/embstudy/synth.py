"""Stage ``synth``: a seeded synthetic review corpus in the real Webis-CLS-10 layout (demo profile).

Reads params ``data.synth`` and ``data.language``; writes ``paths.SYNTH_TARBALL``, a .tar.gz holding
``cls-acl10-unprocessed/<language>/{books,dvd,music}/{train,test,unlabeled}.review`` in the real item format,
byte-identical for a seed. French (the demo's) is written here; English, German and Japanese by
``embstudy.phrasebook``, the same way. Reviews mix neutral sentences (plot, context, purchase) with opinion
clauses from a moderate lexicon per domain (general + domain words, about 30 per polarity); ``negation_rate``
of the clauses are negated with an opposite word (« l'intrigue n'est pas captivante » is negative),
``contrast_rate`` of the reviews hold a « mais »/« pourtant » turn whose last clause decides, and
``label_noise`` of each labelled class carries the opposite rating. Every file has its own random stream,
so the size of one split never changes another.

Run: ``python -m embstudy.synth`` (or ``dvc repro synth``).
"""
from __future__ import annotations

import gzip
import html
import io
import random
import re
import string
import tarfile
import textwrap

from embstudy import files, params, paths, phrasebook, stage

# ---- Word tables. Adjectives: "masc", "masc:fem" or "masc:fem:masc-plural" (forms()); "_" is a space.
# Nouns: "gender:word" with gender m, f, mp or fp. Lists of phrases are "|"-separated.
POSITIVE = ("excellent remarquable magnifique superbe formidable génial réussi brillant émouvant original "
            "agréable parfait merveilleux:merveilleuse touchant impressionnant sublime intelligent admirable")
NEGATIVE = ("décevant ennuyeux:ennuyeuse médiocre mauvais:mauvaise nul:nulle raté lourd plat fade pénible "
            "bâclé insipide creux:creuse prétentieux:prétentieuse lassant confus maladroit affligeant")
DOMAINS = {
    "books": dict(
        category="Livres", consume=("lire", "lu"),
        positive="captivant fluide poignant haletant limpide foisonnant subtil palpitant "
                 "savoureux:savoureuse lumineux:lumineuse profond bien_écrit",
        negative="indigeste verbeux:verbeuse laborieux:laborieuse convenu superficiel:superficielle "
                 "mal_écrit décousu invraisemblable soporifique répétitif:répétitive prévisible bavard",
        aspects="f:l'intrigue mp:les personnages m:le style f:l'écriture f:la fin m:le début "
                "mp:les dialogues f:la traduction m:le récit f:l'histoire fp:les descriptions m:le héros "
                "f:l'héroïne m:le rythme f:la construction m:le dénouement m:le premier chapitre",
        items="m:livre m:roman m:ouvrage m:recueil m:polar m:récit f:biographie f:saga",
        fillers=["L'histoire se déroule à {city} {period}.", "Le roman suit {first}, {role} {event}.",
                 "{creator} a publié « {title} » en {year}.", "Le livre fait {pages} pages.",
                 "Je l'ai lu {when}.", "C'est le {ordinal} roman {of_creator} que je lis.",
                 "Le narrateur est {role}.", "Il y est question de {theme} et de {theme2}.",
                 "L'action commence {period} et se termine {period2}.",
                 "Je n'avais jamais lu {creator} avant « {title} ».",
                 "Le dernier chapitre se passe à {city}.",
                 "C'est {genre} qui commence dans {venue} {of_city}.", "{creator} est {job} de formation.",
                 "On y croise {role}, {object} et {object2}.", "La préface est signée {actor}."],
        genres="un roman policier|un roman historique|un recueil de nouvelles|une autobiographie|un conte|"
               "un roman d'aventures|un essai philosophique|une bande dessinée|un roman épistolaire|"
               "un récit de voyage|une chronique familiale|un roman d'anticipation",
        when="pendant les vacances|en deux jours|dans le train|cet été|pour le club de lecture|sur la plage|"
             "au lit le soir|pendant un long week-end",
    ),
    "dvd": dict(
        category="DVD", consume=("voir", "vu"),
        positive="spectaculaire bien_joué saisissant hilarant percutant soigné bouleversant efficace rythmé "
                 "drôle inoubliable magistral",
        negative="mal_joué interminable bancal:bancale:bancals grotesque caricatural poussif:poussive "
                 "ringard mou:molle:mous surjoué daté incohérent vulgaire",
        aspects="m:le scénario mp:les acteurs f:l'image f:la mise_en_scène f:la bande-son mp:les dialogues "
                "m:le montage f:la photographie mp:les effets_spéciaux m:le doublage mp:les bonus f:la fin "
                "m:le casting mp:les décors f:l'actrice_principale m:le dernier acte",
        items="m:film m:DVD f:série m:coffret m:documentaire m:thriller m:téléfilm f:comédie",
        fillers=["Le film se déroule à {city} {period}.", "On y suit {first}, {role} {event}.",
                 "{creator} a réalisé ce film en {year}.", "Le film dure {minutes} minutes.",
                 "Je l'ai vu {when}.", "{actor} joue le rôle de {first}.", "Le DVD propose {bonus}.",
                 "C'est une édition {edition}.", "Il y est question de {theme} et de {theme2}.",
                 "C'est une adaptation d'un roman {of_actor}.", "Le tournage a eu lieu à {city} en {year}.",
                 "C'est le {ordinal} film {of_creator} que je vois.",
                 "C'est {genre} dont la première scène a lieu dans {venue}.",
                 "{actor} était {job} avant le cinéma.", "Dans la première scène, {role} {action} {object}."],
        genres="un western|un film noir|une comédie musicale|un film d'horreur|un drame historique|"
               "un film d'animation|une comédie romantique|un film de science-fiction|un road-movie|"
               "un film de guerre|un film de cape et d'épée|un huis clos",
        when="en famille|un dimanche soir|avec des amis|au cinéma puis en DVD|pendant les fêtes|"
             "en version originale|avec mes enfants|un soir de pluie",
    ),
    "music": dict(
        category="Musique", consume=("écouter", "écouté"),
        positive="entraînant mélodieux:mélodieuse envoûtant harmonieux:harmonieuse planant énergique "
                 "inventif:inventive puissant délicat enjoué aérien:aérienne chaleureux:chaleureuse",
        negative="criard monotone sirupeux:sirupeuse assourdissant braillard aseptisé commercial "
                 "brouillon:brouillonne strident mielleux:mielleuse agaçant inaudible",
        aspects="fp:les mélodies f:la voix f:la production mp:les arrangements mp:les textes m:le son "
                "fp:les guitares f:la batterie mp:les refrains m:le chanteur f:la chanteuse m:le mixage "
                "mp:les morceaux f:l'ambiance f:la pochette m:le premier titre",
        items="m:album m:disque m:CD f:compilation m:opus m:enregistrement",
        fillers=["L'album compte {tracks} titres.", "{creator} a enregistré ce disque à {city} en {year}.",
                 "On y entend {instrument} et {instrument2}.", "Le groupe vient {of_city}.",
                 "Je l'écoute {when}.", "Le {ordinal} titre s'appelle « {song} ».",
                 "C'est le {ordinal} album {of_creator} que j'achète.", "Les textes parlent de {theme}.",
                 "J'ai découvert {creator} {discover}.", "Le disque dure {minutes} minutes.",
                 "{creator} était en concert à {city} en {year}.", "C'est {genre} enregistré dans {venue}.",
                 "Le bassiste était {job} avant de rejoindre le groupe.",
                 "La pochette montre {object} devant {venue}.", "Le disque est produit par {actor}."],
        genres="un disque de jazz|un album de rock|un disque de chanson française|un album de reggae|"
               "un disque d'électro|un album de folk|un disque de musique classique|un album de rap|"
               "un disque de soul|un album de blues|un disque de bossa-nova|un album de zouk",
        when="en voiture|le soir|en travaillant|depuis des semaines|au casque|en faisant la cuisine|"
             "en boucle|le dimanche matin",
    ),
}
GENERAL_FILLERS = ["Je l'ai acheté {bought}.", "Je l'ai acheté pour {person}.", "Je l'ai prêté à {person}.",
                   "C'est {person} qui me l'a conseillé.", "Reçu en {days} jours.", "Voici mon avis.",
                   "Je suis fan {of_creator} depuis {days} ans.", "Je l'ai {consumed} pendant {occasion}.",
                   "Je ne connaissais pas {creator} avant.", "On me l'a offert {bought}.",
                   "Je précise que je ne suis pas spécialiste.", "Mon avis ne concerne que {ce_item}."]
INTENSIFIERS = "très vraiment extrêmement particulièrement totalement franchement".split()
HEDGES = "plutôt assez un_peu relativement globalement parfois".split()
NEGATIONS = ["pas", "pas du tout", "jamais", "pas vraiment"]
CONTRASTS = [", mais ", ". Pourtant, ", ". En revanche, ", ", mais pourtant ", ". Cependant, "]
VERBS = {1: "adoré aimé apprécié savouré", -1: "détesté"}  # « j'ai adoré ce livre », « je n'ai pas aimé… »
PREFIXES = ["", "", "", "Franchement, ", "À mon avis, ", "Pour moi, ", "Honnêtement, "]
CLOSERS = {1: ["Je le recommande vivement.", "Un vrai coup de cœur !", "À {consume} absolument !",
               "Bravo à {creator} !"],
           -1: ["À éviter.", "Passez votre chemin.", "Quelle déception !", "Dommage pour {creator}."]}
SUMMARIES = {1: "Un régal|Coup de cœur|Excellent|Superbe|Un petit bijou|Bravo|À découvrir|Magnifique",
             -1: "Décevant|Quelle déception|À éviter|Sans intérêt|Dommage|Bof|Ennuyeux|Raté",
             0: "Mitigé|Moyen|Sans plus"}
FIRST = ("Jean Marie Pierre Claire Louis Camille Julien Sophie Antoine Élise Hugo Manon Lucien Agathe Victor "
         "Inès Mathieu Léa Gaston Odile Rémi Céline Thibault Margaux Étienne Hélène Benoît Chloé Yves Nadia "
         "Karim Amélie Olivier Zoé Fabrice Juliette Bastien Solène Arnaud Maëlle Gérard Noémie Laurent Anaïs "
         "Félix Bérénice Hervé Josiane Marius Lise Aurélien Capucine Denis Françoise Grégoire Irène Joël "
         "Mireille Adèle Baptiste Colette Damien Eugénie Firmin Ghislaine Honoré Isaure Jacques Koffi Léonie "
         "Martin Nathalie Octave Pauline Quentin Rosalie Samuel Thérèse Ulysse Valentine Walid Xavier "
         "Yasmine Albert Blanche Clément Delphine Emile Fanny Gilles Hortense Ivan Jeanne Kevin Lucie Maxime "
         "Ninon").split()
SUR_START = ("Bel Mar Dur Lem Rob Val Mon Char Fon Gar Lam Ber Ver Cor Dam Gil Mer Pel Ren Sav Tess Brun "
             "Chav Fer Mic Per Rich Bout Gauth Lef Mor Bon Clav Del Garn Leg Marc Roch Tourn Vid Bard Cast "
             "Aub Baill Coll Drou Esc Flam Guill Herb Jourd Lang Mass Noir Pasq Raym Sall Thib Vern Bouch "
             "Carr Dess Four Mall").split()
SUR_MIDDLE = "er il an or ou ev ag el".split()
SUR_END = ("ard eau in ot ier ais ille on et oux ac ange ert ène aud and elle iot eix ieu ès ollet al as "
           "eron ignac ois uel ry").split()
TITLE_NOUNS = ("m:silence f:nuit m:jardin f:mémoire m:hiver f:ombre m:orage f:rivière m:secret f:lettre "
               "m:voyage f:maison m:rivage f:saison m:miroir f:frontière m:chemin f:lumière m:vent f:île "
               "m:désert f:forêt m:soleil f:étoile m:phare f:promesse m:labyrinthe f:tempête m:retour "
               "f:fenêtre m:piano f:plage m:royaume f:cendre m:cœur f:route m:masque f:ville m:océan f:danse "
               "m:fleuve f:montagne m:village f:colline m:navire f:citadelle m:printemps f:aube m:crépuscule "
               "f:source m:souvenir f:valse m:sable f:neige m:feu f:pluie m:château f:rose m:loup f:chambre "
               "m:pont f:gare m:horizon f:vague m:matin f:légende m:serment f:prière m:carnaval f:boussole "
               "m:verger").split()
TITLE_ADJ = ("blanc:blanche noir perdu dernier:dernière lointain secret:secrète oublié rouge bleu froid "
             "doux:douce sauvage immobile invisible ancien:ancienne brûlant fragile éternel:éternelle "
             "endormi étranger:étrangère gris vert silencieux:silencieuse interdit nocturne amer:amère fauve "
             "caché inachevé suspendu sombre clair doré").split()
CITIES = ("Paris Lyon Marseille Brest Lille Nantes Bordeaux Toulouse Montréal Bruxelles Genève Alger Naples "
          "Berlin Tokyo Rouen Grenoble Dakar Lisbonne Québec Rennes Avignon Angers Orléans Strasbourg Dijon "
          "Bastia Nice Tunis Vienne Lausanne Liège Namur Abidjan Casablanca Beyrouth Madrid Venise Prague "
          "Dublin Édimbourg Cracovie Istanbul Athènes Séville Limoges Besançon Perpignan Poitiers Quimper "
          "Colmar Chamonix Biarritz Arles Nancy Metz Reims Amiens Caen Tours Ajaccio").split()
PHRASES = dict(  # slot name -> phrases a neutral sentence draws from
    first="|".join(FIRST),
    period="pendant la guerre|dans les années 60|au XIXe siècle|de nos jours|au Moyen Âge|sous l'Occupation|"
           "dans les années 80|au début du siècle dernier|en 1789|pendant un hiver glacial|"
           "dans un futur proche|pendant la Révolution|à la Belle Époque|en plein été",
    role="un jeune médecin|une institutrice|un détective privé|une avocate|un vieux pêcheur|une journaliste|"
         "un professeur de piano|une orpheline|un soldat|une étudiante|un boulanger|une comtesse|un policier|"
         "une infirmière|un peintre|une chanteuse|un paysan|une archéologue|un enfant|un banquier|un marin|"
         "une libraire|un horloger|une danseuse|un notaire|une pharmacienne|un facteur|une veuve|un ébéniste|"
         "une violoniste|un garde forestier|une photographe|un cuisinier|une aviatrice|"
         "un instituteur retraité|une botaniste|un contrebandier|une couturière|un chauffeur de taxi|"
         "une cartographe|un brocanteur|une sage-femme|un apiculteur|une vigneronne|un cheminot|"
         "une trapéziste|un forgeron|une sommelière|un serrurier|une bergère|un typographe|une géologue|"
         "un colporteur|une dentellière|un mineur",
    plot="quitte sa famille|enquête sur un meurtre|cherche son frère disparu|découvre un secret de famille|"
         "hérite d'une vieille maison|part en voyage|perd la mémoire|revient dans son village natal|"
         "fuit la police|reçoit une lettre étrange|doit sauver sa fille|change de vie|prépare un concours|"
         "traverse l'Atlantique|ouvre un restaurant|rencontre un inconnu",
    action="cherche|vend|répare|vole|cache|retrouve|dessine|perd|achète|protège|découvre|construit|attend|"
           "poursuit|soigne|photographie|échange|enterre|traduit|convoite|restaure|transporte|déchiffre|"
           "collectionne|emprunte|dérobe|brûle|vend aux enchères|ramène|expertise|entretient|fabrique|garde",
    object="un tableau|une clé rouillée|un manuscrit|un violon|une montre en or|un bateau|"
           "une carte au trésor|un chien errant|une valise|un héritage|un cheval|une lettre d'amour|"
           "un vieux moulin|une épicerie|un diamant|une boussole|un carnet|un coffre|une photographie|"
           "une bicyclette|un grimoire|une statue|un phare abandonné|une orangeraie|un trousseau de clés|"
           "une pendule|un herbier|un télescope|une malle|un parchemin|une locomotive|un perroquet|"
           "un vignoble|une horloge|un moulin à vent|une cabane|un médaillon|un sous-marin|une forge|"
           "un accordéon|une tapisserie|un chandelier|une mandoline|un éventail|une armure|un sablier|"
           "une lanterne|un tricycle|une jument|un voilier|une chapelle|un pigeonnier|une fresque|"
           "un automate|une tabatière|un cerf-volant|une calèche|un aquarium|une roulotte|un gramophone|"
           "une poupée de porcelaine|un hamac|un kayak|une cornemuse|un samovar|une machine à écrire|"
           "un dirigeable|une serre|un traîneau|une mine de charbon|un bateau-lavoir|une distillerie|"
           "un observatoire|une truffière|un chalutier|une auberge",
    theme="l'amour|la guerre|l'exil|la famille|la mémoire|la vengeance|l'amitié|la trahison|la perte|"
          "l'enfance|la solitude|la justice|la liberté|la vieillesse|la cupidité|la jalousie",
    person="ma mère|mon père|ma sœur|mon frère|ma fille|mon fils|ma grand-mère|mon grand-père|ma voisine|"
           "mon voisin|mon collègue|ma collègue|mon neveu|ma nièce|mon parrain|ma marraine|mon cousin|"
           "ma cousine|mon libraire|mon professeur|ma femme|mon mari|mon fiancé|ma meilleure amie|mon oncle",
    job="professeur de lettres|ancien journaliste|médecin|avocat|ingénieur|instituteur|architecte|comédien|"
        "psychiatre|historien|pharmacien|infirmier|chauffeur routier|charpentier|diplomate|bibliothécaire|"
        "agriculteur|officier de marine|guide de montagne|traducteur|cuisinier|photographe",
    venue="une gare|un café|un hôpital|une usine|un lycée|un port|un hôtel|une prison|une bibliothèque|"
          "un cirque|un théâtre|une église|un marché couvert|une ferme|un cimetière|une école|un musée|"
          "une caserne|une boulangerie|un casino|un grenier|une cave|un hangar|un studio|une abbaye|"
          "un manoir|une péniche|un refuge|une mairie|un tribunal|une pension|un sanatorium|une raffinerie|"
          "un abattoir|une chocolaterie|un couvent|une filature|un entrepôt|une pâtisserie|un atelier",
    occasion="un séjour à l'hôpital|une grève des transports|un voyage en Bretagne|une convalescence|"
             "un déménagement|une panne d'électricité|les vacances de Pâques|un stage de voile|"
             "une nuit d'insomnie|un week-end pluvieux|un mariage en province|"
             "une randonnée dans les Pyrénées|un congé maternité|une semaine de neige|un trajet en ferry|"
             "les fêtes de fin d'année|une croisière sur le Rhin|une cure thermale|un chantier de rénovation|"
             "la rentrée scolaire|un séminaire d'entreprise|une garde de nuit|un festival de bande dessinée|"
             "un pique-nique en forêt|un tour de Corse|une période de chômage|un pèlerinage|"
             "une escale à Singapour|un concours de pétanque|une visite chez le dentiste",
    bonus="un making-of|des scènes coupées|un commentaire audio|des entretiens avec l'équipe|"
          "la bande-annonce|un livret de vingt pages",
    edition="collector en zone 2|au format 16/9 avec sous-titres|remastérisée en haute définition|"
            "en version longue|en double DVD avec audiodescription|en noir et blanc restaurée|"
            "en coffret métallique|en version française uniquement",
    instrument="du piano|des cuivres|une guitare acoustique|des violons|un accordéon|des synthétiseurs|"
               "une contrebasse|des percussions|un violoncelle|une harpe|un saxophone|des chœurs",
    bought="le mois dernier|pour Noël|d'occasion|après avoir lu une critique|sur un coup de tête|"
           "pour un anniversaire|en promotion|à sa sortie",
    discover="à la radio|en concert|grâce à un ami|dans un film|au festival d'Avignon|au festival de Nantes",
    ordinal="premier|deuxième|troisième|quatrième|cinquième|dernier",
)
MONTHS = "janvier février mars avril mai juin juillet août septembre octobre novembre décembre".split()
VOWELS = "aeiouyéèêâîôàhAEIOUYÉÈÊÂÎÔÀH"  # elision before these (no aspirated h in the tables)

# ---- Knobs below params: they set how easy the task is (TF-IDF yardstick about 80 % with the defaults).
OPINION_SHARE = 0.6  # chance that a sentence carries an opinion (at least one per review)
CLOSER_SHARE = 0.2  # reviews ending on a verdict such as « À éviter. »
LENGTH_WEIGHTS = (5, 9, 13, 15, 15, 13, 9, 6)  # reviews of 1..8 sentences
UNLABELED_RATINGS = (1, 2, 3, 4, 5), (4, 4, 1, 4, 4)  # 3-star (mixed) reviews only here, about 6 %


def forms(entry: str) -> dict[str, str]:
    """Agreement forms of an adjective entry, keyed m, f, mp, fp (regular French rules unless spelled out)."""
    parts = entry.replace("_", " ").split(":")
    m = parts[0]
    f = parts[1] if len(parts) > 1 else m if m.endswith("e") else m + "e"
    mp = parts[2] if len(parts) > 2 else (m if m[-1] in "sx" else m + "x" if m.endswith("eau")
                                         else m[:-2] + "aux" if m.endswith("al") else m + "s")
    return {"m": m, "f": f, "mp": mp, "fp": f + "s"}


def noun(entry: str) -> tuple[str, str]:
    """``"f:l'intrigue"`` -> ("f", "l'intrigue")."""
    gender, word = entry.split(":", 1)
    return gender, word.replace("_", " ")


def the(gender: str, word: str) -> str:
    """Definite article with elision: l'hiver, le vent, la nuit."""
    return f"l'{word}" if word[0] in VOWELS else f"{'le' if gender[0] == 'm' else 'la'} {word}"


def of(gender: str, word: str) -> str:
    """« de » + article: de l'hiver, du vent, de la nuit."""
    return f"de l'{word}" if word[0] in VOWELS else f"{'du' if gender[0] == 'm' else 'de la'} {word}"


def elide_de(name: str) -> str:
    """« de » before a name: de Lyon, d'Angers."""
    return f"d'{name}" if name[0] in VOWELS else f"de {name}"


def this(gender: str, word: str) -> str:
    """Demonstrative: ce livre, cet album, cette série."""
    return f"cette {word}" if gender == "f" else f"cet {word}" if word[0] in VOWELS else f"ce {word}"


def lexicon(domain: str) -> dict:
    """What a review of ``domain`` draws from: sentiment words (general + domain), aspects, items, phrases."""
    spec = DOMAINS[domain]
    return {**spec, 1: [forms(a) for a in f"{POSITIVE} {spec['positive']}".split()],
            -1: [forms(a) for a in f"{NEGATIVE} {spec['negative']}".split()],
            "aspects": [noun(a) for a in re.split(r" (?=[mf]p?:)", spec["aspects"])],
            "items": [noun(i) for i in spec["items"].split()],
            "phrases": {k: v.split("|") for k, v in {**PHRASES, "when": spec["when"], "genre": spec["genres"],
                                                     "city": "|".join(CITIES)}.items()},
            # what every language's lexicon has (embstudy.phrasebook.lexicon)
            "opinion": opinion, "filler": filler, "catalog": catalog, "join": " ", "host": "amazon.fr",
            "intensifiers": [f"{w} " for w in INTENSIFIERS],
            "hedges": [f"{h.replace('_', ' ')} " for h in HEDGES],
            "bare": "j",  # no « Pour moi, j'ai aimé »
            "prefixes": PREFIXES, "ends": [".", ".", ".", " !"], "contrasts": CONTRASTS, "closers": CLOSERS,
            "summaries": {k: v.split("|") for k, v in SUMMARIES.items()}, "months": MONTHS,
            "date": "{day} {month} {year}"}


def catalog(rng: random.Random, domain: str) -> list[dict]:
    """Products of a domain: title, creator (author, director or band), an actor, a song, an ASIN."""
    def surname():
        middle = rng.choice(SUR_MIDDLE) if rng.random() < 0.3 else ""
        return rng.choice(SUR_START) + middle + rng.choice(SUR_END)

    def person():
        return f"{rng.choice(FIRST)} {surname()}"

    def title():
        (g, w), (g2, w2) = noun(rng.choice(TITLE_NOUNS)), noun(rng.choice(TITLE_NOUNS))
        name = rng.choice([f"{the(g, w)} {forms(rng.choice(TITLE_ADJ))[g]}", f"{the(g, w)} et {the(g2, w2)}",
                           f"{the(g, w)} {of(g2, w2)}"])
        return name[0].upper() + name[1:]

    def band():
        plural = forms(noun(rng.choice(TITLE_NOUNS))[1])["mp"].capitalize()
        return rng.choice([person(), f"{rng.choice(FIRST)} & les {plural}", f"{person()} Quartet",
                           f"{surname()} Trio"])

    return [{"title": title(), "creator": band() if domain == "music" else person(), "actor": person(),
             "song": title(), "asin": phrasebook.asin(rng, domain, "2")} for _ in range(phrasebook.PRODUCTS)]


def opinion(rng: random.Random, lex: dict, product: dict, item: tuple, polarity: int, strong: bool,
            negation_rate: float) -> str:
    """A clause meaning ``polarity`` (+1/-1); a negated one has an opposite word: « n'est pas captivante »."""
    negated = rng.random() < negation_rate
    word, mod = rng.choice(lex[-polarity if negated else polarity]), phrasebook.modifier(rng, lex, strong)
    neg, (g, name), kind = rng.choice(NEGATIONS), item, rng.random()
    art = "une" if g == "f" else "un"
    if kind < 0.55:  # an aspect: « les personnages sont très attachants »
        ga, aspect = rng.choice(lex["aspects"])
        be, not_be = ("sont", "ne sont") if ga.endswith("p") else ("est", "n'est")
        return f"{aspect} {not_be} {neg} {word[ga]}" if negated else f"{aspect} {be} {mod}{word[ga]}"
    neg = neg.replace("jamais", "pas")  # « ce n'est jamais un roman… » is not French
    if kind < 0.75:  # the product: « c'est un roman captivant »
        return f"ce n'est {neg} {art} {name} {word[g]}" if negated else f"c'est {art} {name} {mod}{word[g]}"
    if kind < 0.9:  # a verb: « j'ai adoré ce livre »
        verb = rng.choice(VERBS[-polarity if negated else polarity].split())
        return f"je n'ai {neg} {verb} {this(g, name)}" if negated else f"j'ai {verb} {this(g, name)}"
    creator = product["creator"]  # « Jean Dumont signe un roman captivant »
    return f"{creator} ne signe {neg} {art} {name} {word[g]}" if negated \
        else f"{creator} signe {art} {name} {mod}{word[g]}"


def filler(rng: random.Random, lex: dict, product: dict, item: tuple) -> str:
    """A sentence without opinion (plot, context, purchase); only the slots it names are drawn."""
    template = rng.choice(lex["fillers"] + GENERAL_FILLERS)
    fixed = {**product, "of_creator": elide_de(product["creator"]), "of_actor": elide_de(product["actor"]),
             "ce_item": this(*item), "consumed": lex["consume"][1]}

    def draw(slot: str):
        key = slot.rstrip("2")  # {object2}: a second, independent object
        if key in fixed:
            return fixed[key]
        if key in phrasebook.NUMBERS:
            return rng.randint(*phrasebook.NUMBERS[key])
        if key == "of_city":
            return elide_de(draw("city"))
        if key == "event":
            return "qui " + (draw("plot") if rng.random() < 0.3 else f"{draw('action')} {draw('object')}")
        return rng.choice(lex["phrases"][key])

    return template.format(**{s: draw(s) for _, s, _, _ in string.Formatter().parse(template) if s})


def sentence(clause: str, rng: random.Random, lex: dict) -> str:
    if not clause.startswith(lex["bare"]):
        prefix = rng.choice(lex["prefixes"])
        clause = prefix + (clause[0].upper() + clause[1:] if prefix.endswith(": ") else clause)  # Fazit: Die…
    return clause[0].upper() + clause[1:] + rng.choice(lex["ends"])


def review(rng: random.Random, lex: dict, product: dict, polarity: int, rating: int, rates: dict) -> str:
    """Text of one review whose opinions mean ``polarity`` (0: mixed, for 3-star reviews)."""
    item, strong = rng.choice(lex["items"]), rating in (1, 5)
    n = rng.choices(range(1, 9), weights=LENGTH_WEIGHTS)[0]
    n_opinions = max(1, sum(rng.random() < OPINION_SHARE for _ in range(n)))

    def clause(pol):
        sign = pol or rng.choice((1, -1))  # mixed (3-star) reviews: either way
        return lex["opinion"](rng, lex, product, item, sign, strong, rates["negation_rate"])

    sentences = [lex["filler"](rng, lex, product, item) for _ in range(n - n_opinions)]
    sentences += [sentence(clause(polarity), rng, lex) for _ in range(n_opinions)]
    rng.shuffle(sentences)
    if polarity and rng.random() < rates["contrast_rate"]:  # « X, mais Y »: the last clause decides
        turn = clause(-polarity) + rng.choice(lex["contrasts"]) + clause(polarity)
        sentences[rng.randrange(n)] = sentence(turn, rng, lex)
    if polarity and rng.random() < CLOSER_SHARE:
        sentences.append(rng.choice(lex["closers"][polarity]).format(consume=lex["consume"][0], **product))
    return lex["join"].join(sentences)


def records(seed: int, domain: str, split: str, size: int, rates: dict, language: str = "fr") -> list[dict]:
    """The reviews of one file, with ``polarity`` (the text's sentiment) beside the fields. Labelled splits:
    ``size`` per class, exactly round(label_noise * size) of each class with the opposite polarity;
    unlabeled: ``size`` reviews, a few 3-star ones with mixed opinions."""
    rng = random.Random(f"{seed}/{domain}/{split}")  # one stream per file
    lex = lexicon(domain) if language == "fr" else phrasebook.lexicon(language, domain)
    products = lex["catalog"](random.Random(f"{seed}/{domain}/catalog"), domain)
    if split == "unlabeled":
        ratings = rng.choices(*UNLABELED_RATINGS, k=size)
        polarities = [(r > 3) - (r < 3) for r in ratings]
    else:
        noisy = round(rates["label_noise"] * size)
        flipped = set(rng.sample(range(size), noisy)) | {size + i for i in rng.sample(range(size), noisy)}
        ratings = [rng.choice((4, 5)) for _ in range(size)] + [rng.choice((1, 2)) for _ in range(size)]
        polarities = [(1 if i < size else -1) * (-1 if i in flipped else 1) for i in range(2 * size)]
        order = rng.sample(range(2 * size), 2 * size)  # classes interleaved, as in a real file
        ratings, polarities = [ratings[i] for i in order], [polarities[i] for i in order]
    out = []
    for rating, polarity in zip(ratings, polarities):
        product = rng.choice(products)
        out.append({**product, "category": lex["category"], "rating": rating, "polarity": polarity,
                    "url": f"http://www.{lex['host']}/product-reviews/{product['asin']}",
                    "text": review(rng, lex, product, polarity, rating, rates),
                    "summary": rng.choice(lex["summaries"][polarity]),
                    "date": lex["date"].format(day=rng.randint(1, 28), month=rng.choice(lex["months"]),
                                               year=rng.randint(2000, 2009))})
    return out


def item_xml(r: dict) -> str:
    """One item as in the real files: fields run together, the text wrapped over lines, entities escaped."""
    esc = {k: html.escape(str(v), quote=False) for k, v in r.items()}
    text = textwrap.fill(esc["text"], width=100, break_on_hyphens=False, break_long_words=False)
    return (f"<item><category>{esc['category']}</category><rating>{r['rating']}.0</rating>"
            f"<asin>{esc['asin']}</asin><url>{esc['url']}</url>"
            f"<text>{text}</text><title>{esc['title']}</title><summary>{esc['summary']}</summary>"
            f"<location\n/><date>{esc['date']}</date></item>\n")


def review_file(recs: list[dict]) -> str:
    """A .review file: a header line, then the items separated by blank lines."""
    return '<?xml version="1.0" encoding="UTF-8"?>\n' + "\n".join(item_xml(r) for r in recs)


def tarball(files: dict[str, str]) -> bytes:
    """A reproducible .tar.gz of ``files`` (path -> text): sorted, with folders, fixed owner, modes, times."""
    buf = io.BytesIO()
    folders = sorted({name.rsplit("/", k)[0] for name in files for k in range(1, name.count("/") + 1)})
    with gzip.GzipFile(fileobj=buf, mode="wb", mtime=0, filename="") as gz, \
            tarfile.open(fileobj=gz, mode="w", format=tarfile.USTAR_FORMAT) as tar:
        for name in folders + sorted(files):
            info, data = tarfile.TarInfo(name), files[name].encode("utf-8") if name in files else None
            info.mtime, info.uid, info.gid, info.uname, info.gname = 1262304000, 0, 0, "", ""  # 2010-01-01
            if data is None:
                info.type, info.mode = tarfile.DIRTYPE, 0o755
            else:
                info.mode, info.size = 0o644, len(data)
            tar.addfile(info, None if data is None else io.BytesIO(data))
    return buf.getvalue()


def corpus(s: params.Synth, language: str = "fr") -> dict[tuple[str, str], list[dict]]:
    """Every file's records in ``language``, keyed (domain, split)."""
    rates = {"label_noise": s.label_noise, "negation_rate": s.negation_rate, "contrast_rate": s.contrast_rate}
    sizes = {"train": s.labelled_per_class, "test": s.labelled_per_class, "unlabeled": s.unlabeled_per_domain}
    return {(d, split): records(s.seed, d, split, size, rates, language)
            for d in DOMAINS for split, size in sizes.items()}


def build(recs: dict[tuple[str, str], list[dict]], language: str = "fr") -> bytes:
    """The corpus tarball of :func:`corpus`'s records in ``language``."""
    return tarball({f"cls-acl10-unprocessed/{language}/{d}/{split}.review": review_file(r)
                    for (d, split), r in recs.items()})


def main() -> None:
    p, logger = stage.start("synth")
    recs = corpus(p.data.synth, p.data.language)
    files.atomic_write(paths.SYNTH_TARBALL, build(recs, p.data.language))
    logger.info("wrote %s: %d %s reviews", paths.SYNTH_TARBALL, sum(map(len, recs.values())), p.data.language)


if __name__ == "__main__":
    main()
