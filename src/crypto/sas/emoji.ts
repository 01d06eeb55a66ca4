/**
 * The 64 SAS emoji of the Matrix spec (data-definitions/sas-emoji.json, matrix-spec @d0ba2aae):
 * index = 6 bits of the SAS bytes. The `description` is the spec's English name, which clients
 * show under the emoji; `unicode` names the exact code points (some carry U+FE0F).
 */
export interface SasEmoji {
  readonly index: number;
  readonly emoji: string;
  readonly description: string;
  readonly unicode: string;
}

const TABLE: readonly (readonly [string, string, string])[] = [
  ["🐶", "Dog", "U+1F436"],
  ["🐱", "Cat", "U+1F431"],
  ["🦁", "Lion", "U+1F981"],
  ["🐎", "Horse", "U+1F40E"],
  ["🦄", "Unicorn", "U+1F984"],
  ["🐷", "Pig", "U+1F437"],
  ["🐘", "Elephant", "U+1F418"],
  ["🐰", "Rabbit", "U+1F430"],
  ["🐼", "Panda", "U+1F43C"],
  ["🐓", "Rooster", "U+1F413"],
  ["🐧", "Penguin", "U+1F427"],
  ["🐢", "Turtle", "U+1F422"],
  ["🐟", "Fish", "U+1F41F"],
  ["🐙", "Octopus", "U+1F419"],
  ["🦋", "Butterfly", "U+1F98B"],
  ["🌷", "Flower", "U+1F337"],
  ["🌳", "Tree", "U+1F333"],
  ["🌵", "Cactus", "U+1F335"],
  ["🍄", "Mushroom", "U+1F344"],
  ["🌏", "Globe", "U+1F30F"],
  ["🌙", "Moon", "U+1F319"],
  ["☁️", "Cloud", "U+2601U+FE0F"],
  ["🔥", "Fire", "U+1F525"],
  ["🍌", "Banana", "U+1F34C"],
  ["🍎", "Apple", "U+1F34E"],
  ["🍓", "Strawberry", "U+1F353"],
  ["🌽", "Corn", "U+1F33D"],
  ["🍕", "Pizza", "U+1F355"],
  ["🎂", "Cake", "U+1F382"],
  ["❤️", "Heart", "U+2764U+FE0F"],
  ["😀", "Smiley", "U+1F600"],
  ["🤖", "Robot", "U+1F916"],
  ["🎩", "Hat", "U+1F3A9"],
  ["👓", "Glasses", "U+1F453"],
  ["🔧", "Spanner", "U+1F527"],
  ["🎅", "Santa", "U+1F385"],
  ["👍", "Thumbs Up", "U+1F44D"],
  ["☂️", "Umbrella", "U+2602U+FE0F"],
  ["⌛", "Hourglass", "U+231B"],
  ["⏰", "Clock", "U+23F0"],
  ["🎁", "Gift", "U+1F381"],
  ["💡", "Light Bulb", "U+1F4A1"],
  ["📕", "Book", "U+1F4D5"],
  ["✏️", "Pencil", "U+270FU+FE0F"],
  ["📎", "Paperclip", "U+1F4CE"],
  ["✂️", "Scissors", "U+2702U+FE0F"],
  ["🔒", "Lock", "U+1F512"],
  ["🔑", "Key", "U+1F511"],
  ["🔨", "Hammer", "U+1F528"],
  ["☎️", "Telephone", "U+260EU+FE0F"],
  ["🏁", "Flag", "U+1F3C1"],
  ["🚂", "Train", "U+1F682"],
  ["🚲", "Bicycle", "U+1F6B2"],
  ["✈️", "Aeroplane", "U+2708U+FE0F"],
  ["🚀", "Rocket", "U+1F680"],
  ["🏆", "Trophy", "U+1F3C6"],
  ["⚽", "Ball", "U+26BD"],
  ["🎸", "Guitar", "U+1F3B8"],
  ["🎺", "Trumpet", "U+1F3BA"],
  ["🔔", "Bell", "U+1F514"],
  ["⚓", "Anchor", "U+2693"],
  ["🎧", "Headphones", "U+1F3A7"],
  ["📁", "Folder", "U+1F4C1"],
  ["📌", "Pin", "U+1F4CC"],
];

export const SAS_EMOJI: readonly SasEmoji[] = TABLE.map(([emoji, description, unicode], index) =>
  Object.freeze({ index, emoji, description, unicode }),
);
