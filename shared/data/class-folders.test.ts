import { describe, expect, it } from 'vitest';
import { classFolders } from './class-folders.ts';

describe('classFolders', () => {
  it('names folders by the class names, made safe for a path', () => {
    expect(classFolders(3, ['cat', 'dog', 'red fox'])).toEqual(['cat', 'dog', 'red_fox']);
    expect(classFolders(2, ['t-shirt', 'a/b'])).toEqual(['t-shirt', 'a_b']);
  });

  it('falls back to labels that sort in label order when names are missing, clash or could hide', () => {
    expect(classFolders(3)).toEqual(['0', '1', '2']);
    expect(classFolders(12).slice(0, 3)).toEqual(['00', '01', '02']);
    expect([...classFolders(12)].sort()).toEqual(classFolders(12));
    expect(classFolders(2, ['a b', 'a/b'])).toEqual(['0', '1']);
    expect(classFolders(2, ['.hidden', 'b'])).toEqual(['0', '1']);
    expect(classFolders(2, ['only one'])).toEqual(['0', '1']);
  });
});
