// The console's English and Dutch catalogues say the same things: the same keys, the same
// {placeholders} in each message, and no message left empty or untranslated by accident.
import { describe, expect, it } from 'vitest';
import { CATALOGUES, languageFrom, translate } from '../../clients/connector/console/i18n.ts';

const placeholders = (text: string) => [...text.matchAll(/\{(\w+)\}/g)].map((match) => match[1]).sort();

describe('console catalogues', () => {
  it('have the same keys and placeholders in English and Dutch', () => {
    const { en, nl } = CATALOGUES;
    expect(Object.keys(nl).sort()).toEqual(Object.keys(en).sort());
    for (const key of Object.keys(en) as (keyof typeof en)[]) {
      expect(nl[key].trim(), key).not.toBe('');
      expect(placeholders(nl[key]), key).toEqual(placeholders(en[key]));
    }
  });

  it('translates the Dutch strings (a copy of the English would pass the key check)', () => {
    const { en, nl } = CATALOGUES;
    const same = (Object.keys(en) as (keyof typeof en)[]).filter((key) => en[key] === nl[key]);
    // Words that are the same in both languages.
    expect(same.sort()).toEqual(['devices.status', 'records.file', 'staff.id'].sort());
  });

  it('fills placeholders and picks a language from Accept-Language', () => {
    expect(translate('nl', 'patient.title', { number: '123456782' })).toBe('Patiënt 123456782');
    expect(translate('en', 'app.signedInAs', { staff: 'anna' })).toBe('Signed in as anna ({role})');
    expect(languageFrom('nl-NL,nl;q=0.9,en;q=0.8')).toBe('nl');
    expect(languageFrom('de-DE,en;q=0.5')).toBe('en');
    expect(languageFrom(undefined)).toBe('en');
  });
});
