// Reads an SDL file with graphql-js's buildSchema (what codegen and lint tools do)
// and prints the names of the types it defines, as JSON.
import { readFileSync } from "node:fs";
import { buildSchema } from "graphql";

const schema = buildSchema(readFileSync(process.argv[2], "utf8"));
const names = Object.keys(schema.getTypeMap()).filter((name) => !name.startsWith("__"));
console.log(JSON.stringify(names.sort()));
