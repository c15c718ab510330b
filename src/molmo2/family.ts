// Which member of the Molmo2 family a converted model is, and what it can be asked: the model panel
// shows it before a download and after a load. The checkpoint's config cannot tell Molmo2-4B from
// Molmo2-VideoPoint-4B (VideoPoint's published values equal the 4B's), so the member is read from the
// repository the model was converted from (`manifest.source.repo`), then from its display name.
// (MolmoPoint is named too, though the converter refuses it until its point head has graphs:
// conversion.ts conversionRefusal.) Platform-free.

export type FamilyMember = 'molmo2-4b' | 'molmo2-8b' | 'molmo2-videopoint-4b' | 'molmo2-o-7b' | 'molmopoint' | 'demo-shapes' | 'molmo2';

export interface ModelCard {
  member: FamilyMember;
  /** The variant's name as Ai2 publishes it ("Molmo2-8B"), or the model's own name when unknown. */
  variant: string;
  /** Parameters in words: "8.7 B parameters". */
  size: string;
  /** What it answers, in the presets' words (empty with random weights: nothing meaningful). */
  abilities: string[];
  /** A caveat the user should read before asking (a specialised or demo model, random weights). */
  note?: string;
}

export interface CardSource {
  name: string;
  source: { repo: string };
  architecture: { parameters: number; randomWeights: boolean };
}

/** The demo model's source label (tools/prepare-default-model.ts writes it). */
export const DEMO_SHAPES_REPO = 'molmo2-web/demo-shapes';

const GENERAL = ['Point', 'Count', 'Track (video)', 'Describe', 'Questions about images, several images and video'];

const MEMBERS: { member: FamilyMember; variant: string; test: RegExp }[] = [
  // Most specific first: "MolmoPoint-Vid-4B" and "Molmo2-VideoPoint-4B" both end in 4B.
  { member: 'molmopoint', variant: 'MolmoPoint', test: /molmopoint/ },
  { member: 'molmo2-videopoint-4b', variant: 'Molmo2-VideoPoint-4B', test: /videopoint/ },
  { member: 'molmo2-o-7b', variant: 'Molmo2-O-7B', test: /molmo2-o-7b|\bo-7b\b/ },
  { member: 'molmo2-8b', variant: 'Molmo2-8B', test: /molmo2-8b|\b8b\b/ },
  { member: 'molmo2-4b', variant: 'Molmo2-4B', test: /molmo2-4b|\b4b\b/ },
];

/** "8.7 B parameters", "40 M parameters". */
export function parametersText(n: number): string {
  if (n >= 1e9) return `${(n / 1e9).toFixed(1)} B parameters`;
  if (n >= 1e6) return `${Math.round(n / 1e6)} M parameters`;
  return `${n.toLocaleString('en')} parameters`;
}

/** Which family member `m` is, and what it can be asked. */
export function modelCard(m: CardSource): ModelCard {
  const size = parametersText(m.architecture.parameters);
  const repo = m.source.repo.toLowerCase();
  if (repo === DEMO_SHAPES_REPO) {
    return {
      member: 'demo-shapes',
      variant: 'Molmo2 demo (synthetic shapes)',
      size,
      abilities: ['Point', 'Count', 'Track (video)', 'Describe'],
      note: 'Trained here on coloured circles, squares and triangles only, not on Molmo2’s data: it knows nothing else.',
    };
  }
  // The repository's last part names the checkpoint ("allenai/Molmo2-8B"); a local folder's path may not.
  const found = MEMBERS.find((x) => x.test.test(repo.split('/').at(-1) ?? '')) ?? MEMBERS.find((x) => x.test.test(m.name.toLowerCase()));
  const member = found?.member ?? 'molmo2';
  const variant = found?.variant ?? m.name;
  const card: ModelCard = { member, variant, size, abilities: GENERAL };
  if (member === 'molmo2-videopoint-4b') {
    card.abilities = ['Point (video)', 'Count (video)'];
    card.note = 'Fine-tuned only on video pointing and counting: captions, tracks and other questions are outside what it was trained for.';
  }
  if (m.architecture.randomWeights) {
    card.abilities = [];
    card.note = 'Random weights: it runs the whole pipeline, but its answers are meaningless.';
  }
  return card;
}
