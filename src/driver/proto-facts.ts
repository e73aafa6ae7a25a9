import type { DescField, DescFile, DescMessage } from "@bufbuild/protobuf";
import { ScalarType } from "@bufbuild/protobuf";

/**
 * The protocol facts of a compute-driver proto file: what must match upstream for the wire to
 * match (names, numbers, types, cardinality, oneof membership, streaming), and nothing else
 * (comments, options, declaration order). Pure; the drift test and scripts/proto-drift.sh
 * compare these for our file and upstream's.
 */
export interface ProtoFacts {
  package: string;
  services: { name: string; methods: string[] }[];
  messages: { name: string; fields: string[]; reserved: string[] }[];
}

export function protoFacts(file: DescFile): ProtoFacts {
  const messages: ProtoFacts["messages"] = [];
  const visit = (m: DescMessage): void => {
    messages.push({
      name: m.typeName,
      fields: m.fields.map(fieldFact).sort(),
      reserved: [
        ...m.proto.reservedRange.map((r) => `${r.start}-${r.end - 1}`),
        ...m.proto.reservedName,
      ].sort(),
    });
    for (const nested of m.nestedMessages) visit(nested);
  };
  for (const m of file.messages) visit(m);
  return {
    package: file.proto.package,
    services: file.services.map((s) => ({
      name: s.typeName,
      methods: s.methods
        .map((m) => `${m.name}(${m.input.typeName}) ${m.methodKind} ${m.output.typeName}`)
        .sort(),
    })),
    messages: messages.sort((a, b) => a.name.localeCompare(b.name)),
  };
}

function fieldFact(f: DescField): string {
  const oneof = f.oneof ? ` oneof=${f.oneof.name}` : "";
  const optional = f.proto.proto3Optional ? " optional" : "";
  return `${f.number} ${f.name}: ${fieldType(f)}${oneof}${optional}`;
}

function fieldType(f: DescField): string {
  switch (f.fieldKind) {
    case "scalar":
      return ScalarType[f.scalar].toLowerCase();
    case "enum":
      return f.enum.typeName;
    case "message":
      return f.message.typeName;
    case "list":
      return `repeated ${f.listKind === "scalar" ? ScalarType[f.scalar].toLowerCase() : f.listKind === "enum" ? f.enum.typeName : f.message.typeName}`;
    case "map": {
      const value =
        f.mapKind === "scalar"
          ? ScalarType[f.scalar].toLowerCase()
          : f.mapKind === "enum"
            ? f.enum.typeName
            : f.message.typeName;
      return `map<${ScalarType[f.mapKey].toLowerCase()}, ${value}>`;
    }
  }
}
