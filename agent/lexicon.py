"""Words the instruction parser knows: the rule layer under the embedding grounding.

These lists are *exemplars*, not the whole vocabulary: object and action words are grounded by
nearest-exemplar search in text-embedding space (`agent.grounding`), so a word missing here still
grounds when MiniLM puts it close to an exemplar ("tumbler" -> mug, "relocate" -> put). Two things stay
rule-based on purpose: colour shades (MiniLM cannot tell "crimson" from "purple": measured cosine 0.51 to
"red" vs 0.60 to "purple") and grammar words (determiners, prepositions, sequence markers).
"""

from __future__ import annotations

# --- colours ------------------------------------------------------------------------------------------
COLOUR_SHADES: dict[str, tuple[str, ...]] = {
    "red": ("red", "crimson", "scarlet", "ruby", "cherry", "maroon", "vermilion", "carmine", "burgundy", "reddish"),
    "green": ("green", "emerald", "lime", "olive", "jade", "mint", "sage", "forest", "greenish", "chartreuse"),
    "blue": ("blue", "azure", "navy", "cobalt", "sapphire", "sky", "cerulean", "ultramarine", "bluish", "blueish"),
    "yellow": ("yellow", "golden", "gold", "lemon", "amber", "mustard", "canary", "saffron", "yellowish"),
}
OTHER_COLOURS: tuple[str, ...] = (
    "purple", "violet", "lavender", "lilac", "magenta", "mauve", "orange", "pink", "black", "white", "brown",
    "grey", "gray", "beige", "tan", "silver", "turquoise", "teal", "cyan", "indigo", "fuchsia", "khaki",
    "ivory", "cream", "peach", "coral", "bronze", "copper", "rainbow", "multicoloured", "multicolored",
    "transparent", "clear", "striped", "spotted", "dark", "light",
)
"""Colours (and colour-like words) no object in the scene has: an NP naming one is refused."""
SHADE_NOUNS = frozenset({"lemon", "lime", "cherry", "olive", "gold", "ruby", "sapphire", "emerald", "jade",
                         "sky", "forest", "mint", "sage", "orange", "cream", "peach", "coral", "salmon"})
"""Colour words that are also things: as the last word of a noun phrase they are nouns ("the lemon")."""

# --- object types (exemplars for embedding search) ------------------------------------------------------
TYPE_EXEMPLARS: dict[str, tuple[str, ...]] = {
    "block": ("block", "cube", "brick", "toy block", "building block", "wooden block", "square block"),
    "mug": ("mug", "cup", "coffee mug", "coffee cup", "teacup", "tea cup", "beaker"),
    "bowl": ("bowl", "basin", "container", "salad bowl", "soup bowl"),
    "plate": ("plate", "dish", "saucer", "platter", "dinner plate"),
    "drawer": ("drawer", "cabinet drawer", "desk drawer", "top drawer", "drawer unit"),
    "table": ("table", "counter", "countertop", "tabletop", "work surface", "kitchen table", "desk", "surface"),
    "self": ("gripper", "hand", "arm", "claw", "end effector", "robot arm", "yourself", "fingers"),
    "tower": ("tower", "stack", "pile"),
}
NEGATIVE_NOUNS: tuple[str, ...] = (
    "fridge", "refrigerator", "freezer", "oven", "stove", "microwave", "sink", "dishwasher", "toaster", "kettle",
    "pan", "pot", "spoon", "fork", "knife", "spatula", "ladle", "bottle", "glass", "jar", "can", "banana",
    "apple", "orange fruit", "bread", "egg", "cheese", "fruit", "vegetable", "carrot", "potato", "tomato", "lemon",
    "shelf", "cupboard", "chair", "stool", "sofa", "bed", "floor", "ground", "wall", "window", "door", "box",
    "basket", "bin", "bag", "trash can", "ball", "book", "phone", "laptop", "sponge", "towel", "napkin", "lid",
    "tray", "vase", "plant", "lamp", "person", "dog", "cat", "car", "key", "pen", "weather", "time", "song",
)
"""Things that are not in the kitchen scene: a phrase nearest to one of these is refused."""
GENERIC_HEADS = frozenset({"one", "ones", "thing", "things", "object", "objects", "item", "items", "piece",
                           "pieces", "stuff", "toy", "toys", "everything", "all"})
TYPE_OBJECTS: dict[str, tuple[str, ...]] = {
    "block": ("red_block", "green_block", "blue_block", "yellow_block"),
    "mug": ("mug",), "bowl": ("bowl",), "plate": ("plate",), "drawer": ("drawer",), "table": ("table",),
}
HARMLESS_MODIFIERS = frozenset({
    "small", "little", "tiny", "big", "large", "wooden", "plastic", "ceramic", "metal", "toy", "building",
    "square", "cubic", "coloured", "colored", "kitchen", "coffee", "tea", "dinner", "salad", "soup", "empty",
    "top", "same", "single", "whole", "nice", "cute", "solid", "desk", "cabinet", "flat", "round", "cube",
})

# --- actions (exemplars) ----------------------------------------------------------------------------
VERB_EXEMPLARS: dict[str, tuple[str, ...]] = {
    "pick": ("pick", "pick up", "grab", "grasp", "take", "lift", "get", "fetch", "hold", "raise", "seize",
             "collect", "retrieve", "snatch", "pluck", "grip", "clutch", "hoist", "catch", "give", "hand"),
    "place": ("put", "place", "set", "drop", "move", "transfer", "insert", "store", "stow", "deposit", "lay",
              "rest", "position", "bring", "carry", "relocate", "toss", "throw", "pop", "stick", "load",
              "return", "dump", "tuck", "slip", "plonk", "plop", "lower", "leave", "keep", "shift"),
    "hide": ("hide", "conceal", "stash", "tuck away"),
    "stack": ("stack", "pile", "build", "make a tower", "stack up", "assemble"),
    "open": ("open", "unclose", "pull open", "slide open"),
    "close": ("close", "shut", "slam", "push shut"),
    "push": ("push", "shove", "nudge", "slide", "poke", "bump", "scoot", "roll", "drag", "pull", "kick",
             "flick", "propel"),
    "reach": ("reach", "approach", "touch", "go", "head", "point", "hover", "visit", "navigate", "reach for",
              "go to", "move to", "tap"),
    "release": ("release", "let go", "drop it", "unhand"),
    "remove": ("remove", "extract", "take out", "take off", "unload"),
    "empty": ("empty", "clear", "clear off", "clean out", "unpack"),
    "unstack": ("unstack", "take down", "dismantle", "knock down"),
}
NEGATIVE_VERBS: tuple[str, ...] = (
    "eat", "drink", "wash", "clean", "cook", "cut", "chop", "slice", "pour", "throw away", "break", "smash",
    "paint", "sing", "dance", "talk", "speak", "look", "watch", "find", "search", "count", "smell", "heat",
    "boil", "fry", "bake", "fold", "spin", "rotate", "flip", "turn", "shake", "jump", "sleep", "write", "read",
    "say", "tell", "wait", "stop", "help", "call", "play", "fix", "repair", "lock", "unlock", "water", "feed",
    "wrap", "tie", "fill", "cover", "destroy", "burn", "melt", "freeze",
)
"""Actions outside the skill set: an action word nearest to one of these is refused."""

IRREGULAR_FORMS: dict[str, str] = {
    "took": "take", "taken": "take", "held": "hold", "got": "get", "gotten": "get", "brought": "bring",
    "laid": "lay", "threw": "throw", "thrown": "throw", "gave": "give", "given": "give", "went": "go",
    "gone": "go", "kept": "keep", "caught": "catch", "built": "build", "made": "make", "put": "put",
    "set": "set", "shut": "shut", "hid": "hide", "hidden": "hide", "stuck": "stick", "goes": "go",
}

# --- grammar words ------------------------------------------------------------------------------------
DETERMINERS = frozenset({"the", "a", "an", "this", "that", "these", "those", "my", "your", "its", "some", "any",
                         "another", "our", "their", "his", "her"})
INDEFINITE = frozenset({"a", "an", "some", "any", "another"})
QUANTIFIERS: dict[str, int | None] = {
    "all": None, "every": None, "each": None, "both": 2, "two": 2, "three": 3, "four": 4, "five": 5,
}
PRONOUNS = frozenset({"it", "them", "they", "that", "this", "these", "those", "itself", "there", "here"})
PLURAL_PRONOUNS = frozenset({"them", "they", "these", "those"})
OTHER_WORDS = frozenset({"other", "others", "remaining", "rest"})
SEQUENCE_WORDS = frozenset({"then", "next", "finally", "lastly", "afterwards", "afterward", "subsequently",
                            "later", "thereafter"})
NEGATIONS = frozenset({"not", "never", "dont", "don't"})
STATE_WORDS: dict[str, str] = {"open": "open", "opened": "open", "ajar": "open", "closed": "closed",
                               "shut": "closed", "close": "closed"}
PARTICLES = frozenset({"up", "down", "away", "back", "out", "off", "over", "aside", "in", "inside", "together",
                       "stacked"})
CONJUNCTIONS = frozenset({"and", "or", "&", "plus", ","})

LOCATION_PREPOSITIONS: dict[str, str] = {
    "in": "in", "inside": "in", "within": "in", "into": "in", "onto": "on", "on": "on", "upon": "on",
    "atop": "on", "ontop": "on", "over": "on", "above": "on", "to": "to", "at": "to", "towards": "to",
    "toward": "to",
}
DIRECTIONAL_PREPOSITIONS = frozenset({"into", "onto", "ontop", "to", "towards", "toward"})
SOURCE_PREPOSITIONS = frozenset({"from", "outof", "off", "offof"})
UNSUPPORTED_PREPOSITIONS = frozenset({"nextto", "beside", "besides", "near", "by", "behind", "infrontof", "under",
                                      "underneath", "beneath", "below", "between", "around", "against", "leftof",
                                      "rightof", "closeto", "awayfromobj", "among", "across", "through", "along",
                                      "upsidedown"})
WITH_PREPOSITIONS = frozenset({"with", "using", "of"})

DIRECTION_WORDS: dict[str, str] = {
    "left": "left", "leftward": "left", "leftwards": "left", "right": "right", "rightward": "right",
    "rightwards": "right", "forward": "forward", "forwards": "forward", "ahead": "forward", "away": "forward",
    "further": "forward", "farther": "forward", "backward": "backward", "backwards": "backward",
    "back": "backward", "closer": "backward", "nearer": "backward",
}

# Multi-word expressions rewritten to one token before parsing (longest first wins).
PHRASES: dict[str, str] = {
    "on top of": "ontop", "in to": "into", "on to": "onto", "inside of": "inside", "out of": "outof",
    "off of": "offof", "next to": "nextto", "in front of": "infrontof", "close to": "closeto",
    "to the left of": "leftof", "to the right of": "rightof", "left of": "leftof", "right of": "rightof",
    "and then": "then", "after that": "then", "after this": "then", "once done": "then", "when done": "then",
    "once that is done": "then", "when that is done": "then", "once you are done": "then",
    "when you are done": "then", "once finished": "then", "as soon as that is done": "then",
    "first of all": "first", "to start": "first", "to begin": "first", "start by": "first", "begin by": "first",
    "as well as": "and", "along with": "and", "together with": "and",
    "except for": "except", "other than": "except", "apart from": "except", "aside from": "except",
    "but not": "except", "excluding": "except", "save for": "except",
    "take hold of": "grab", "get hold of": "grab", "grab hold of": "grab", "catch hold of": "grab",
    "let go of": "release", "let go": "release", "get rid of": "discard", "throw away": "discard",
    "throw out": "discard", "pick up": "pick up", "make sure": "", "go ahead and": "",
    "the rest of the": "the rest", "the rest of": "the rest", "all of the": "all the", "each of the": "each the",
    "every single": "every", "both of the": "both the", "all of": "all", "both of": "both", "each of": "each",
    "towards you": "backward", "toward you": "backward", "towards yourself": "backward",
    "toward yourself": "backward", "towards the robot": "backward", "toward the robot": "backward",
    "closer to you": "backward", "closer to yourself": "backward", "in your direction": "backward",
    "to you": "backward", "to yourself": "backward", "towards your base": "backward",
    "away from you": "forward", "away from yourself": "forward", "away from the robot": "forward",
    "further away": "forward", "farther away": "forward", "further from you": "forward",
    "towards me": "forward", "toward me": "forward", "closer to me": "forward", "away from me": "backward",
    "to the left": "left", "to the right": "right", "to your left": "left", "to your right": "right",
    "to the front": "forward", "to the back": "forward", "away from": "awayfromobj",
    "right now": "", "right away": "", "at once": "", "for me": "", "if you can": "", "if possible": "",
    "thank you": "", "would you mind": "", "be so kind as to": "", "would you be so kind as to": "",
    "in the end": "finally", "at the end": "finally",
    "one by one": "", "one at a time": "", "in turn": "", "a little bit": "", "a little": "", "a bit": "",
    "a tiny bit": "", "slightly": "", "a tad": "", "as well": "", "upside down": "upsidedown",
    "on its side": "upsidedown", "sideways": "upsidedown",
    "on top of each other": "stacked", "on top of one another": "stacked", "onto each other": "stacked",
    "on each other": "stacked", "onto one another": "stacked", "on one another": "stacked",
    "one on top of the other": "stacked", "into a tower": "stacked", "into a stack": "stacked",
    "in a tower": "stacked", "in a stack": "stacked", "into a pile": "stacked", "each other": "",
    "one another": "",
    "back where it was": "back", "back to where it was": "back", "to where it was": "back", "where it was": "back",
    "back where it was before": "back", "where it was before": "back", "back where they were": "back",
    "back to where they were": "back", "where they were": "back", "where they were before": "back",
    "back where it came from": "back", "where it came from": "back", "back where you found it": "back",
    "back to where you found it": "back", "where you found it": "back", "back to its place": "back",
    "back in its place": "back", "to its original place": "back", "to its original position": "back",
    "back to its original place": "back", "back to its original position": "back", "to its old place": "back",
    "back to its old place": "back", "back to where it started": "back", "to where it started": "back",
}

FILLERS = frozenset({
    "please", "pls", "plz", "kindly", "could", "would", "can", "will", "shall", "you", "i", "we", "me", "us",
    "let", "lets", "let's", "just", "now", "quickly", "carefully", "gently", "slowly", "also", "too", "again",
    "want", "need", "needs", "like", "love", "should", "must", "mind", "be", "is", "are", "was", "were", "been",
    "being", "so", "kind", "as", "thanks", "thank", "okay", "ok", "hey", "hi", "hello", "robot", "sure",
    "alright", "um", "uh", "well", "do", "does", "did", "try", "to", "ensure", "have", "has", "had", "see",
    "yes", "yeah", "possible", "wish", "ll", "d", "s", "re", "ve", "m", "able", "going", "gonna", "wanna",
    "maybe", "perhaps", "anyway", "actually", "simply", "safely", "neatly", "softly", "nicely", "end", "up",
    "currently", "sitting", "lying", "located", "which", "who", "where", "what", "still", "already", "once",
    "more", "time", "for", "yo", "oi", "hmm", "mate", "buddy", "friend", "assistant", "folks", "required", "needed",
})
"""Words that carry no goal: politeness, modal verbs, pronouns for the speaker, adverbs of manner."""
