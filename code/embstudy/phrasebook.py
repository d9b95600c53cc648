"""The synthetic corpus in English, German and Japanese: word tables and the two functions that write with them.

``embstudy.synth`` writes French itself (the demo's corpus, with agreement and elision) and asks this module
for the other languages of Webis-CLS-10 when ``data.language`` names one. :func:`lexicon` gives the same keys
as the French one, so a review is put together the same way in every language: neutral sentences (plot,
context, purchase), opinion clauses from a lexicon per domain (general + domain words), negated clauses with
an opposite word (« the plot is not gripping » is negative), contrast turns and closers. German opinions are
predicative, so adjectives never inflect; Japanese ones negate i- and na-adjectives by rule (面白くない,
退屈ではない), and sentences run on without spaces. What every language shares, French included, lives here
too: the product count, the ranges of numbers in neutral sentences, modifiers and product ids.
"""
from __future__ import annotations

import functools
import random
import re
import string

# Each language: adjectives (Japanese: i-adjectives end in い, na-adjectives in な), nouns ("p:" plural, German
# "m:"/"n:"/"f:" gender), "|"-separated phrases; "_" is a space. Clause templates name their slots.
TABLES = {
    "en": dict(
        host="amazon.com", isbn="0", join=" ", bare=(), name="{first} {last}", ends=[".", ".", ".", "!"],
        positive="excellent remarkable superb wonderful brilliant moving original delightful perfect touching "
                 "impressive clever",
        negative="disappointing boring mediocre bad awful weak dull tedious sloppy shallow pretentious clumsy",
        domains=dict(
            books=dict(category="Books", consume="read", positive="gripping fluent poignant vivid subtle lyrical "
                       "well-written absorbing", negative="wordy laborious predictable superficial rambling "
                       "implausible repetitive badly-written",
                       aspects="the_plot p:the_characters the_style the_writing the_ending the_beginning "
                               "p:the_dialogues the_translation the_story the_narrator the_pace",
                       items="novel book biography collection thriller memoir",
                       fillers=["The story is set in {city} in {year}.", "{creator} published “{title}” in {year}.",
                                "The book runs to {pages} pages.", "I read it {when}.",
                                "The narrator is called {first}."],
                       when="on holiday|in two days|on the train|this summer|for my book club|at the beach"),
            dvd=dict(category="DVD", consume="see", positive="spectacular well-acted stunning hilarious powerful "
                     "polished thrilling funny", negative="poorly-acted endless clunky grotesque cheesy overacted "
                     "dated incoherent",
                     aspects="the_script p:the_actors the_picture the_direction the_soundtrack the_editing "
                             "the_photography p:the_special_effects the_dubbing p:the_extras the_cast",
                     items="film DVD series box_set documentary comedy",
                     fillers=["The film is set in {city}.", "{creator} directed it in {year}.",
                              "It runs {minutes} minutes.", "I watched it {when}.", "{actor} plays {first}."],
                     when="with my family|on a Sunday evening|with friends|over the holidays|"
                          "in the original version|with my kids"),
            music=dict(category="Music", consume="hear", positive="catchy melodic haunting harmonious energetic "
                       "inventive soulful uplifting", negative="shrill monotonous syrupy deafening bland grating "
                       "muddy tuneless",
                       aspects="p:the_melodies the_voice the_production p:the_arrangements p:the_lyrics the_sound "
                               "p:the_guitars the_drumming p:the_choruses the_singer the_mix the_cover_art",
                       items="album record CD compilation",
                       fillers=["The album has {tracks} tracks.", "{creator} recorded it in {city} in {year}.",
                                "I listen to it {when}.", "The second track is called “{song}”.",
                                "It was produced by {actor}."],
                       when="in the car|in the evening|while working|for weeks|on headphones|while cooking")),
        fillers=["I bought it {bought}.", "I bought it for {person}.", "Delivered in {days} days.",
                 "Here is my opinion.", "{creator} was new to me."],
        bought="last month|for Christmas|second-hand|after reading a review|on a whim|on sale",
        person="my sister|my father|a colleague|my neighbour|my son|a friend",
        clauses=dict(aspect=("{aspect} {be} {mod}{adj}", "{aspect} {be} {neg}{adj}"),
                     product=("it is a {mod}{adj} {item}", "it is {neg2}a {adj} {item}"),
                     verb=("I {verb} this {item}", "I did {neg2}{verb_not} this {item}")),
        be=("is", "are"), negations=["not ", "not at all ", "never ", "not really "], negations2=["not ", "not really "],
        intensifiers="very_ really_ extremely_ particularly_ truly_ remarkably_",
        hedges="rather_ fairly_ slightly_ somewhat_ mostly_ quite_",
        verbs={1: "loved:love liked:like enjoyed:enjoy", -1: "hated:hate"},
        prefixes=["", "", "", "Honestly, ", "In my opinion, ", "For me, ", "Frankly, "],
        contrasts=[", but ", ". Still, ", ". However, ", ", and yet "],
        closers={1: ["Highly recommended.", "A real favourite!", "A must-{consume}!", "Well done, {creator}!"],
                 -1: ["Avoid.", "Skip this one.", "What a letdown!", "Too bad for {creator}."]},
        summaries={1: "A delight|Loved it|Excellent|Superb|A little gem|Bravo|A must|Magnificent",
                   -1: "Disappointing|What a letdown|Avoid|Pointless|Too bad|Meh|Boring|A flop",
                   0: "Mixed feelings|Average|So-so"},
        date="{month} {day}, {year}",
        months="January February March April May June July August September October November December",
        first="James Mary John Linda Robert Susan Emma Oliver Grace Henry Alice Jack Lucy Thomas Sarah Daniel Ruth "
              "Peter Clara Samuel",
        surnames="Smith Johnson Carter Hughes Walker Bennett Turner Parker Collins Morgan Fisher Wright Harris "
                 "Cooper Reed Foster Hayes Palmer Gray Ellis",
        cities="London Boston Chicago Dublin Seattle Glasgow Denver Leeds Toronto Sydney Austin Bristol Portland "
               "Atlanta Oxford Memphis",
        titles=["The {adj} {noun}", "{noun} and {noun2}", "Return to {city}"],
        title_adj="Silent Lost Last Distant Secret Forgotten Red Blue Cold Wild Hidden Golden Dark Bright Broken",
        title_nouns="Garden Night Memory Winter Shadow River Letter Voyage House Mirror Road Light Wind Island "
                    "Desert Forest Star Harbour Storm Promise",
        band=["{surname} Trio", "{person} Quartet"],
    ),
    "de": dict(
        host="amazon.de", isbn="3", join=" ", bare=(), name="{first} {last}", ends=[".", ".", ".", "!"],
        positive="ausgezeichnet bemerkenswert großartig wunderbar brillant bewegend originell herrlich perfekt "
                 "berührend beeindruckend klug",
        negative="enttäuschend langweilig mittelmäßig schlecht furchtbar schwach fad mühsam schlampig "
                 "oberflächlich prätentiös ungeschickt",
        domains=dict(
            books=dict(category="Bücher", consume="lesen", positive="spannend flüssig ergreifend lebendig "
                       "feinsinnig poetisch gut_geschrieben fesselnd", negative="langatmig weitschweifig "
                       "vorhersehbar konstruiert unglaubwürdig zäh repetitiv holprig_geschrieben",
                       aspects="die_Handlung p:die_Figuren der_Stil die_Sprache das_Ende der_Anfang "
                               "p:die_Dialoge die_Übersetzung die_Geschichte der_Erzähler das_Tempo",
                       items="n:Buch m:Roman f:Biografie f:Sammlung m:Krimi f:Erzählung",
                       fillers=["Die Geschichte spielt {year} in {city}.",
                                "{creator} hat „{title}“ {year} veröffentlicht.", "Das Buch hat {pages} Seiten.",
                                "Gelesen habe ich es {when}.", "Der Erzähler heißt {first}."],
                       when="im Urlaub|in zwei Tagen|im Zug|diesen Sommer|für meinen Lesekreis|am Strand"),
            dvd=dict(category="DVD", consume="ansehen", positive="spektakulär gut_gespielt atemberaubend urkomisch "
                     "packend sorgfältig mitreißend witzig", negative="hölzern_gespielt endlos bemüht grotesk "
                     "kitschig überzogen veraltet wirr",
                     aspects="das_Drehbuch p:die_Schauspieler das_Bild die_Regie der_Soundtrack der_Schnitt "
                             "die_Kamera p:die_Spezialeffekte die_Synchronisation p:die_Extras die_Besetzung",
                     items="m:Film f:DVD f:Serie f:Box f:Dokumentation f:Komödie m:Thriller",
                     fillers=["Der Film spielt in {city}.", "{creator} hat ihn {year} gedreht.",
                              "Der Film dauert {minutes} Minuten.", "Wir haben ihn {when} gesehen.",
                              "{actor} spielt {first}."],
                     when="mit der Familie|an einem Sonntagabend|mit Freunden|über die Feiertage|"
                          "in der Originalfassung|mit den Kindern"),
            music=dict(category="Musik", consume="anhören", positive="eingängig melodiös betörend harmonisch "
                       "energiegeladen einfallsreich gefühlvoll beschwingt", negative="schrill monoton schmalzig "
                       "ohrenbetäubend steril nervig dumpf unhörbar",
                       aspects="p:die_Melodien die_Stimme die_Produktion p:die_Arrangements p:die_Texte der_Klang "
                               "p:die_Gitarren das_Schlagzeug p:die_Refrains der_Sänger die_Abmischung das_Cover",
                       items="n:Album f:Platte f:CD f:Kompilation",
                       fillers=["Das Album hat {tracks} Titel.", "Aufgenommen wurde es {year} in {city}.",
                                "Ich höre es {when}.", "Der zweite Titel heißt „{song}“.",
                                "Produzent ist {actor}."],
                       when="im Auto|abends|beim Arbeiten|seit Wochen|mit Kopfhörern|beim Kochen")),
        fillers=["Gekauft habe ich es {bought}.", "Ich habe es für {person} gekauft.", "Geliefert in {days} Tagen.",
                 "Hier meine Meinung.", "{creator} war mir neu."],
        bought="letzten Monat|zu Weihnachten|gebraucht|nach einer Rezension|spontan|im Angebot",
        person="meine Schwester|meinen Vater|einen Kollegen|meine Nachbarin|meinen Sohn|eine Freundin",
        clauses=dict(aspect=("{aspect} {be} {mod}{adj}", "{aspect} {be} {neg}{adj}"),
                     product=("{this} {item} ist {mod}{adj}", "{this} {item} ist {neg2}{adj}"),
                     verb=("ich habe {this_acc} {item} {verb}", "ich habe {this_acc} {item} {neg2}{verb_not}")),
        be=("ist", "sind"), negations=["nicht ", "gar nicht ", "überhaupt nicht ", "nicht wirklich "],
        negations2=["nicht ", "nicht wirklich "],
        intensifiers="sehr_ wirklich_ äußerst_ besonders_ total_ ausgesprochen_",
        hedges="ziemlich_ recht_ etwas_ eher_ meist_ einigermaßen_",
        verbs={1: "geliebt gemocht genossen", -1: "gehasst"},
        prefixes=["", "", "", "Ehrlich gesagt: ", "Meine Meinung: ", "Kurz gesagt: ", "Fazit: "],
        contrasts=[", aber ", ", doch ", ". Aber "],
        closers={1: ["Absolut empfehlenswert.", "Ein echtes Highlight!", "Unbedingt {consume}!", "Bravo, {creator}!"],
                 -1: ["Finger weg.", "Nicht zu empfehlen.", "Was für eine Enttäuschung!", "Schade um {creator}."]},
        summaries={1: "Ein Genuss|Großartig|Ausgezeichnet|Super|Ein kleines Juwel|Bravo|Empfehlenswert|Herrlich",
                   -1: "Enttäuschend|Schade|Finger weg|Belanglos|Langweilig|Naja|Misslungen|Reinfall",
                   0: "Gemischte Gefühle|Mittelmaß|Geht so"},
        date="{day}. {month} {year}",
        months="Januar Februar März April Mai Juni Juli August September Oktober November Dezember",
        first="Anna Lukas Marie Jonas Lena Felix Klara Paul Greta Max Sophie Emil Hanna Leon Frieda Moritz Ida "
              "Jakob Lotte Anton",
        surnames="Müller Schmidt Schneider Fischer Weber Wagner Becker Hoffmann Schäfer Koch Richter Klein Wolf "
                 "Neumann Braun Zimmermann Hartmann Krüger Lange Vogel",
        cities="Berlin Hamburg München Köln Leipzig Dresden Bremen Wien Zürich Graz Kiel Bonn Hannover Freiburg "
               "Nürnberg Rostock",
        titles=["{noun} und {noun2}", "Rückkehr nach {city}", "Ein Sommer in {city}"],
        title_adj="",
        title_nouns="Nacht Nebel Sturm Stille Garten Winter Schatten Fluss Brief Reise Haus Spiegel Weg Licht Wind "
                    "Insel Wüste Wald Stern Hafen",
        band=["{surname} Trio", "{person} Quartett"],
    ),
    "jp": dict(
        host="amazon.co.jp", isbn="4", join="", bare=(), name="{last}{first}", ends=["。", "。", "。", "！"],
        positive="素晴らしい 面白い 美しい 感動的な 独創的な 楽しい 完璧な 印象的な 魅力的な 見事な 優しい 心地よい",
        negative="残念な 退屈な 平凡な ひどい つまらない 弱い 単調な 雑な 浅い 大げさな 下手な 不親切な",
        domains=dict(
            books=dict(category="本", consume="読んで", positive="読みやすい 切ない 緻密な 壮大な 繊細な 詩的な "
                       "奥深い 味わい深い", negative="冗長な 読みにくい 陳腐な 回りくどい 不自然な 難解な 薄っぺらい くどい",
                       aspects="ストーリー 登場人物 文体 文章 結末 序盤 会話 翻訳 物語 主人公 展開 描写",
                       items="本 小説 伝記 短編集 推理小説 エッセイ",
                       fillers=["物語の舞台は{year}年の{city}だ。", "{creator}は{year}年に『{title}』を発表した。",
                                "本は{pages}ページある。", "{when}読んだ。", "語り手の名前は{first}だ。"],
                       when="休暇中に|二日で|電車の中で|この夏に|読書会のために|海辺で"),
            dvd=dict(category="DVD", consume="観て", positive="壮観な 華麗な 痛快な 鮮やかな 爽快な 豪華な 熱い 可笑しい",
                     negative="安っぽい 長ったらしい 大味な 古臭い 不快な 支離滅裂な わざとらしい 粗い",
                     aspects="脚本 俳優 映像 演出 音楽 編集 撮影 特殊効果 吹き替え 特典 キャスト",
                     items="映画 DVD ドラマ ボックス ドキュメンタリー コメディ",
                     fillers=["映画の舞台は{city}だ。", "{creator}が{year}年に監督した作品だ。", "上映時間は{minutes}分だ。",
                              "{when}観た。", "{actor}が{first}を演じている。"],
                     when="家族と|日曜日の夜に|友達と|年末年始に|字幕版で|子供たちと"),
            music=dict(category="ミュージック", consume="聴いて", positive="軽快な 爽やかな 力強い 優雅な 温かい 斬新な "
                       "華やかな 穏やかな", negative="うるさい 耳障りな 甘ったるい 騒々しい 無機質な 凡庸な 聴きづらい 重苦しい",
                       aspects="メロディー 歌声 プロデュース アレンジ 歌詞 音 ギター ドラム サビ ボーカル ミックス ジャケット",
                       items="アルバム CD レコード ベスト盤",
                       fillers=["アルバムには{tracks}曲が収録されている。", "{year}年に{city}で録音された。", "{when}聴いている。",
                                "二曲目のタイトルは「{song}」だ。", "プロデューサーは{actor}だ。"],
                       when="車の中で|夜に|仕事をしながら|何週間も|ヘッドホンで|料理をしながら")),
        fillers=["{bought}買った。", "{person}のために買った。", "{days}日で届いた。", "以下は私の感想です。",
                 "{creator}の作品は初めてだ。"],
        bought="先月|クリスマスに|中古で|レビューを読んで|衝動的に|セールで",
        person="妹|父|同僚|隣人|息子|友人",
        clauses=dict(aspect=("{aspect}は{mod}{adj}", "{aspect}は{neg}{adj_not}"),
                     product=("{mod}{attr}{item}だ", "{neg2}{attr}{item}ではない"),
                     verb=("この{item}{verb}", "この{item}{verb_not}")),
        be=("", ""), negations=["", "全然", "あまり", "決して"], negations2=["", "あまり"],
        intensifiers="とても 本当に 非常に すごく かなり 実に", hedges="まあまあ 割と やや 少し 比較的 わりと",
        verbs={1: "が気に入った:があまり気に入らなかった を楽しめた:をあまり楽しめなかった に感動した:にあまり感動しなかった",
               -1: "にがっかりした:にがっかりしなかった"},
        prefixes=["", "", "", "正直、", "個人的には、", "私にとって、", "率直に言うと、"],
        contrasts=["が、", "。しかし、", "。でも、"],
        closers={1: ["強くおすすめします。", "買ってよかった！", "ぜひ{consume}ほしい！", "{creator}さん、ありがとう！"],
                 -1: ["買う必要はない。", "おすすめしません。", "がっかりだ！", "{creator}には失望した。"]},
        summaries={1: "最高|感動しました|素晴らしい|おすすめ|名作|大満足|傑作|買ってよかった",
                   -1: "残念|期待外れ|がっかり|退屈|微妙|イマイチ|失敗作|おすすめしません", 0: "賛否両論|普通|まあまあ"},
        date="{year}/{month}/{day}", months="1 2 3 4 5 6 7 8 9 10 11 12",
        first="翔太 陽菜 大翔 結衣 蓮 美咲 悠真 葵 拓海 さくら 健太 七海 隼人 彩 誠 真央 亮 優子 直樹 愛",
        surnames="佐藤 鈴木 高橋 田中 渡辺 伊藤 山本 中村 小林 加藤 吉田 山田 佐々木 松本 井上 木村 林 清水 山口 森",
        cities="東京 大阪 京都 札幌 福岡 名古屋 神戸 横浜 仙台 広島 奈良 金沢 那覇 長崎 函館 松山",
        titles=["{noun}の{noun2}", "{city}の{noun}"], title_adj="",
        title_nouns="夜 庭 記憶 冬 影 川 手紙 旅 家 鏡 道 光 風 島 砂漠 森 星 港 嵐 約束",
        band=["{surname}トリオ", "{person}カルテット"],
    ),
}
# ---- What every language shares, French included (embstudy.synth uses these too).
NUMBERS = dict(year=(1950, 2009), pages=(120, 900), minutes=(35, 180), tracks=(8, 18), days=(2, 15))
PRODUCTS = 400  # titles per domain


def words(spec: str) -> list[str]:
    return [w.replace("_", " ") for w in spec.split()]


def adjective(word: str) -> dict[str, str]:
    """Forms of an adjective: predicate, negated predicate, before a noun. Only Japanese ones change."""
    if word.endswith("な"):  # na-adjective: 退屈だ, 退屈ではない, 退屈な本
        return {"adj": word[:-1] + "だ", "adj_not": word[:-1] + "ではない", "attr": word}
    if word.endswith("い") and not word.isascii():  # i-adjective: 面白い, 面白くない
        return {"adj": word, "adj_not": word[:-1] + "くない", "attr": word}
    return {"adj": word, "adj_not": word, "attr": word}


def noun(entry: str) -> tuple[str, str]:
    """``"p:the_characters"`` -> ("p", "the characters"); German items ``"m:Roman"``; no prefix: singular."""
    tag, _, word = entry.rpartition(":")
    return tag or "s", word.replace("_", " ")


def lexicon(language: str, domain: str) -> dict:
    """What a review of ``domain`` in ``language`` draws from, with the keys :func:`embstudy.synth.lexicon` has."""
    t, spec = TABLES[language], TABLES[language]["domains"][domain]
    return {**t, **spec, "opinion": opinion, "filler": filler, "catalog": functools.partial(catalog, table=t),
            1: [adjective(w) for w in words(f"{t['positive']} {spec['positive']}")],
            -1: [adjective(w) for w in words(f"{t['negative']} {spec['negative']}")],
            "aspects": [noun(a) for a in spec["aspects"].split()], "items": [noun(i) for i in spec["items"].split()],
            "intensifiers": words(t["intensifiers"]), "hedges": words(t["hedges"]),
            "fillers": spec["fillers"], "general": t["fillers"], "consume": (spec["consume"],) * 2,
            "summaries": {k: v.split("|") for k, v in t["summaries"].items()}, "months": t["months"].split(),
            "phrases": {k: v.split("|") for k, v in dict(when=spec["when"], bought=t["bought"], person=t["person"],
                                                        city="|".join(t["cities"].split())).items()}}


def catalog(rng: random.Random, domain: str, table: dict) -> list[dict]:
    """Products of a domain: title, creator, an actor, a song, an ASIN (books: an ISBN-10 of the language)."""
    def person():
        return table["name"].format(first=rng.choice(table["first"].split()), last=rng.choice(table["surnames"].split()))

    def title():
        nouns, adjectives = table["title_nouns"].split(), table["title_adj"].split() or [""]
        return rng.choice(table["titles"]).format(noun=rng.choice(nouns), noun2=rng.choice(nouns),
                                                   adj=rng.choice(adjectives), city=rng.choice(table["cities"].split()))

    def band():
        return rng.choice([person()] + [b.format(surname=rng.choice(table["surnames"].split()), person=person())
                                        for b in table["band"]])

    return [{"title": title(), "creator": band() if domain == "music" else person(), "actor": person(),
             "song": title(), "asin": asin(rng, domain, table["isbn"])} for _ in range(PRODUCTS)]


def asin(rng: random.Random, domain: str, isbn: str) -> str:
    """A product id: an ISBN-10 of the language's group for books (French 2, English 0), else an ASIN."""
    if domain == "books":
        return isbn + "".join(rng.choices(string.digits, k=9))
    return "B000" + "".join(rng.choices(string.ascii_uppercase + string.digits, k=6))


def modifier(rng: random.Random, lex: dict, strong: bool) -> str:
    """Intensifiers go with 1- and 5-star reviews, hedges with 2 and 4 stars; each ends with its separator."""
    r = rng.random()
    if r < (0.45 if strong else 0.12):
        return rng.choice(lex["intensifiers"])
    return rng.choice(lex["hedges"]) if r < (0.5 if strong else 0.45) else ""


def opinion(rng: random.Random, lex: dict, product: dict, item: tuple, polarity: int, strong: bool,
            negation_rate: float) -> str:
    """A clause meaning ``polarity`` (+1/-1); a negated one has an opposite word: « is not gripping »."""
    negated = rng.random() < negation_rate
    adj, mod = rng.choice(lex[-polarity if negated else polarity]), modifier(rng, lex, strong)
    (ga, aspect), (gi, name) = rng.choice(lex["aspects"]), item
    verb, _, verb_not = rng.choice(lex["verbs"][-polarity if negated else polarity].split()).partition(":")
    this = {"m": ("dieser", "diesen"), "n": ("dieses", "dieses"), "f": ("diese", "diese")}.get(gi, ("", ""))
    kind = rng.random()
    template = lex["clauses"]["aspect" if kind < 0.55 else "product" if kind < 0.8 else "verb"][negated]
    clause = template.format(aspect=aspect, be=lex["be"][ga == "p"], mod=mod, neg=rng.choice(lex["negations"]),
                             neg2=rng.choice(lex["negations2"]), item=name, this=this[0], this_acc=this[1],
                             verb=verb, verb_not=verb_not or verb, **adj)
    return re.sub(r"\ba (?=[aeiou])", "an ", clause)  # English: an excellent novel


def filler(rng: random.Random, lex: dict, product: dict, item: tuple) -> str:
    """A sentence without opinion (plot, context, purchase); only the slots it names are drawn."""
    template = rng.choice(lex["fillers"] + lex["general"])

    def draw(slot: str):
        key = slot.rstrip("2")
        if key in product:
            return product[key]
        if key in NUMBERS:
            return rng.randint(*NUMBERS[key])
        if key == "first":
            return rng.choice(lex["first"].split())
        return rng.choice(lex["phrases"][key])

    return template.format(**{s: draw(s) for _, s, _, _ in string.Formatter().parse(template) if s})
