/** An example of the reference as YAML, the way a config file holds it: short lists of words on one line. */
import { Document, isScalar, visit } from 'yaml';

export function exampleYaml(example: Record<string, unknown>): string {
  const document = new Document(example);
  visit(document, {
    Seq(_key, node) {
      if (node.items.every((item) => isScalar(item))) node.flow = true;
    },
  });
  return document.toString({ lineWidth: 0, flowCollectionPadding: false });
}
