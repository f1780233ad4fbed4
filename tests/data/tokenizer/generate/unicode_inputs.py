# Inputs that pin the Unicode data tokenizers 0.23.2 uses: letters and numbers added in
# Unicode 15.0-17.0 next to "'ll" (a letter or number keeps "'ll" a token of its own), and
# marks its normalizer does not know, placed where a known mark would be reordered.
import json, random
letters = [(0x1C89, 0x1C8A), (0x105C0, 0x105F3), (0x10D4A, 0x10D65), (0x11380, 0x11389), (0x11BC0, 0x11BE0),
           (0x11F04, 0x11F10), (0x13460, 0x143FA), (0x16D40, 0x16D6C), (0x1E030, 0x1E06D), (0x1E4D0, 0x1E4EB),
           (0x1E5D0, 0x1E5ED), (0x2B739, 0x2B739), (0x2EBF0, 0x2EE5D), (0x31350, 0x323AF)]
numbers = [(0x10D40, 0x10D49), (0x116D0, 0x116E3), (0x1CCF0, 0x1CCF9), (0x1D2C0, 0x1D2D3), (0x1E5F1, 0x1E5FA)]
unicode17 = [(0x10940, 0x10959), (0x11DB0, 0x11DDB), (0x16EA0, 0x16EB8), (0x1E6C0, 0x1E6DE), (0x2B73A, 0x2B73F), (0x323B0, 0x33479)]
marks = [0x7FD, 0x898, 0x89F, 0x8CA, 0x8D3, 0x9FE, 0xC3C, 0xD3B, 0xEBA, 0x1715, 0x1ABF, 0x1ACE, 0x1DF6, 0x1DFA, 0xA82C,
         0x10D24, 0x10EAB, 0x10EFD, 0x10F46, 0x10F82, 0x11070, 0x1133B, 0x1145E, 0x11839, 0x1193D, 0x11943, 0x119E0,
         0x11A34, 0x11A47, 0x11A99, 0x11D42, 0x11D44, 0x11D97, 0x11F41, 0x16FF0, 0x1E08F, 0x1E130, 0x1E2AE, 0x1E2EC, 0x1E4EC,
         # Unicode 16.0 and 17.0 marks and composites
         0x897, 0x1ACF, 0x1ADD, 0x1AE0, 0x1AEB, 0x105C9, 0x105E4, 0x10D69, 0x10EFA, 0x11383, 0x113C5, 0x113CE, 0x16121,
         0x1612F, 0x16D68, 0x1E5EE, 0x1E6E3, 0x1E6F5]
cases = []
for a, b in letters + numbers + unicode17:
    for cp in sorted({a, b, (a + b) // 2}):
        cases.append(chr(cp) + "'ll")
        cases.append("x" + chr(cp) + "1 " + chr(cp))
for cp in marks:
    cases.append("q\u0308" + chr(cp) + " q" + chr(cp) + "\u0316 a\u0301" + chr(cp) + "\u0323")
cases.append("\U00011935\U00011930 \U00011938")
cases.append("\U000105D2\u0307 \U000105DA\u0307 \U00011382\U000113C9 \U0001611E\U0001611E \U00016D63\U00016D67")
cases.append("\u180e\u180e x\u180ey")
random.seed(11)
pool = [" ", "  ", "\t", "\n", "a", "'s", "'ll", "1", "<|endoftext|>", "\u00a0", "\u0301", "\u0308", "e\u0301", "\U0001f999"]
for _ in range(1500):
    s = ""
    for _ in range(random.randint(1, 20)):
        if random.random() < 0.4:
            s += random.choice(pool)
        else:
            while True:
                cp = random.choice([random.randint(0x80, 0x2FFF), random.randint(0x3000, 0xFFFF), random.randint(0x10000, 0x3FFFF)])
                if not 0xD800 <= cp <= 0xDFFF:
                    break
            s += chr(cp)
    cases.append(s)
for c in cases:
    print(json.dumps(c, ensure_ascii=True))
