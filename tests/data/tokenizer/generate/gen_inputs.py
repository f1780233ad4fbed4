import json, random
cases = [
 # runs of spaces around the added space tokens (2..24 spaces) and beyond
 *[" " * n for n in (1, 2, 5, 23, 24, 25, 26, 47, 48, 49, 50, 100)],
 *["a" + " " * n + "b" for n in (1, 2, 3, 4, 24, 25, 40)],
 *[" " * n + "word" for n in (1, 2, 3, 24, 25)],
 *["word" + " " * n for n in (1, 2, 3, 24, 25)],
 " \n  \n   \n", "\t \t  \t", "  \t  ", "a \u00a0 b", "\u00a0\u00a0x", "  \u3000  ",
 "x\u180ey", " \u180e ", "a\u2028b\u2029c", "\u0085x\u0085", "a\u200bb", "\u200d\u200c",
 "\u000b\u000c\u001c\u001d\u001e\u001f",
 # added tokens
 "<|endoftext|>", " <|endoftext|> ", "<|endoftext|>  <|endoftext|>", "x<|padding|>y",
 "<|endoftext|>" * 3, "<|endoftext|", "|endoftext|>", "<<|endoftext|>>", "<|endoftext|>\u0301",
 "e<|endoftext|>\u0301", "  <|endoftext|>  ", "<|ENDOFTEXT|>",
 # contractions and casing
 "I'LL 'S 's 'd 'Ve 'VE", "'''", "' s", "it'ss", "rock'n'roll", "'hello'",
 # numbers
 "123456789012345", "1.5e-10", "٣٤٥ ١٢", "Ⅳ ⅻ", "½ ¾ ²", "๑๒๓", "0x1F 0b101",
 # unicode normalization
 "e\u0301", "A\u030a", "\u1100\u1161\u11a8", "\u212b", "\u2126", "Ω", "ﬃ", "ｆｕｌｌ",
 "a\u0328\u0301", "a\u0301\u0328", "q\u0307\u0323", "\u0958", "\u2000\u2001",
 "Cafe\u0301 au lait", "\ufb01\ufb02", "\u00c5ngstr\u00f6m",
 # scripts
 "Ελληνικά κείμενα", "Українська мова", "ქართული", "Հայերեն", "हिन्दी पाठ", "বাংলা",
 "ไทยภาษา", "ລາວ", "ខ្មែរ", "မြန်မာ", "አማርኛ", "ᏣᎳᎩ", "ᠮᠣᠩᠭᠣᠯ", "ꦗꦮ", "𐌰𐌱𐌲 Gothic",
 "𝔘𝔫𝔦𝔠𝔬𝔡𝔢 𝐛𝐨𝐥𝐝", "ﷺ ﷽", "עִבְרִית", "العَرَبِيَّة", "漢字かなカナ한글",
 "𠀀𠀁 ext-B", "\U00031350\U00031351", "\U00011f04\U00011f05", "\U0001e4d0\U0001e4d1",
 "mixed English 日本語 и русский", "abc123def", "ABC_def-ghi.jkl",
 # emoji and symbols
 "👍🏽", "🏳️‍🌈", "🇺🇳🇫🇷", "❤️", "©®™", "∑∫√∞≠≤", "→←↑↓", "♠♣♥♦", "😀😃😄😁",
 "🧑‍💻 coding", "👨‍👩‍👧", "\U0001fae8\U0001fae9", "#️⃣ 1️⃣",
 # control and odd bytes
 "\u0000", "a\u0000b", "\u007f\u0080\u009f", "\ufeffBOM", "\ufffe\uffff", "\U0010ffff",
 "\ue000\uf8ff", "\U000e0001\U000e0041",
 # punctuation runs
 "!!!???...", "---===+++", "```python\nprint('x')\n```", "<html><body>x</body></html>",
 "{\"key\": [1, 2, 3]}", "C:\\path\\to\\file.txt", "a/b/c?d=e&f=g", "$100.00 €50 ¥30",
 "....  ....", "  ...", "~!@#$%^&*()_+", "\"quoted\" 'single'",
 # newlines
 "\n\n\n\n", "\r\r", "\r\n\r\n", "a\n\nb", "  \n", "\n  ", "line\n    indented\n\tTab",
 " \t\n\r\u000b\u000c ",
 # long words
 "a" * 300, "ab" * 200, "supercalifragilisticexpialidocious", "antidisestablishmentarianism",
 "x" * 1000 + " y",
]
random.seed(7)
alphabet = [" ", "  ", "a", "Z", "é", "e\u0301", "1", "'", "s", "\n", "\t", "日", "🦙", "<|endoftext|>", "ß", "İ", "ǅ", "\u0301", ".", "_", "\u00a0", "\u3000", "9"]
for _ in range(40):
    cases.append("".join(random.choice(alphabet) for _ in range(random.randint(1, 25))))
for c in cases:
    print(json.dumps(c, ensure_ascii=True))
