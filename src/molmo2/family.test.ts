import { describe, expect, it } from 'vitest';
import { DEMO_SHAPES_REPO, modelCard, parametersText } from './family.ts';

const real = (repo: string, name = repo.split('/').at(-1)!, parameters = 4.6e9) => modelCard({ name, source: { repo }, architecture: { parameters, randomWeights: false } });

describe('model card', () => {
  it('names each published member from its repository, the most specific first', () => {
    expect(real('allenai/Molmo2-4B')).toMatchObject({ member: 'molmo2-4b', variant: 'Molmo2-4B', size: '4.6 B parameters' });
    expect(real('allenai/Molmo2-8B', 'Molmo2-8B', 8.66e9)).toMatchObject({ member: 'molmo2-8b', size: '8.7 B parameters' });
    // VideoPoint-4B ends in 4B, and its config equals the 4B's: the name is what tells them apart.
    const videoPoint = real('allenai/Molmo2-VideoPoint-4B');
    expect(videoPoint).toMatchObject({ member: 'molmo2-videopoint-4b', variant: 'Molmo2-VideoPoint-4B', abilities: ['Point (video)', 'Count (video)'] });
    expect(videoPoint.note).toMatch(/only on video pointing and counting/);
    expect(real('allenai/Molmo2-O-7B').member).toBe('molmo2-o-7b');
    expect(real('allenai/MolmoPoint-Vid-4B').member).toBe('molmopoint');
  });

  it('reads a local folder by its last part, else by the display name', () => {
    expect(real('/data/.cache/8b-tiny-checkpoint', 'tiny').member).toBe('molmo2-8b');
    expect(real('/home/me/checkpoints/run7', 'Molmo2-VideoPoint-4B (fine-tune)').member).toBe('molmo2-videopoint-4b');
    const unknown = real('/home/me/checkpoints/run7', 'my molmo');
    expect(unknown).toMatchObject({ member: 'molmo2', variant: 'my molmo' });
    expect(unknown.abilities).toContain('Track (video)');
  });

  it('says what the demo model is, and that random weights answer nothing meaningful', () => {
    const demo = modelCard({ name: 'Molmo2 demo', source: { repo: DEMO_SHAPES_REPO }, architecture: { parameters: 39_799_552, randomWeights: false } });
    expect(demo).toMatchObject({ member: 'demo-shapes', size: '40 M parameters', abilities: ['Point', 'Count', 'Track (video)', 'Describe'] });
    expect(demo.note).toMatch(/circles, squares and triangles only/);
    const random = modelCard({ name: 'tiny', source: { repo: 'molmo2-web/tiny-random' }, architecture: { parameters: 1234, randomWeights: true } });
    expect(random.abilities).toEqual([]);
    expect(random.note).toMatch(/meaningless/);
    expect(parametersText(1234)).toBe('1,234 parameters');
  });
});
