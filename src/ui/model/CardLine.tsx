// One line about a model before and after loading: which family member, its size, what it can be
// asked, and its caveat (src/molmo2/family.ts).
import type { ModelCard } from '../../molmo2/family.ts';

export function CardLine({ card, testId }: { card: ModelCard; testId: string }) {
  return (
    <div className="model-card" data-testid={testId} data-member={card.member}>
      <strong>{card.variant}</strong> · {card.size}
      {card.abilities.length > 0 && <> · {card.abilities.join(', ')}</>}
      {card.note && <div className="model-muted">{card.note}</div>}
    </div>
  );
}
