// Apollo Client 4 with automatic persisted queries (PersistedQueryLink, hashed queries
// over GET; over POST with APQ_USE_GET=false, the link's default) against the gateway at
// GATEWAY_URL (its /graphql endpoint). Two clients ask the same query: the first one
// meets a gateway that never saw it, so its hash-only request should be answered
// PERSISTED_QUERY_NOT_FOUND and the link retries with the document (a POST that
// registers it); the second client, with a cache and a link of its own, should be
// answered from its hash-only request. Every HTTP request is recorded as the client sent
// it, with the gateway's answer; one JSON line is printed: {"requests", "results"}.
import { createHash } from "node:crypto";
import { ApolloClient, ApolloLink, HttpLink, InMemoryCache, gql } from "@apollo/client";
import { PersistedQueryLink } from "@apollo/client/link/persisted-queries";

const url = process.env.GATEWAY_URL;
if (!url) {
  console.error("GATEWAY_URL is not set (the gateway's /graphql URL)");
  process.exit(2);
}
const useGET = process.env.APQ_USE_GET !== "false";
// However the gateway answers, never hang the test.
setTimeout(() => {
  console.error("apollo-apq.mjs: timed out");
  process.exit(3);
}, 30_000).unref();

const OPEN_JOBS = gql`
  query OpenJobs($first: Int!, $filter: JobFilter) {
    jobs(first: $first, filter: $filter) {
      nodes {
        id
        name
        status
      }
      pageInfo {
        hasNextPage
        endCursor
      }
    }
  }
`;
const VARIABLES = { first: 3, filter: { statuses: ["OPEN"] } };

const requests = [];

function parseMaybe(text) {
  if (text === null || text === undefined) return null;
  try {
    return JSON.parse(text);
  } catch {
    return text;
  }
}

// `fetch` as HttpLink calls it, recording what went out and what came back.
async function recordingFetch(client, input, init = {}) {
  const target = new URL(typeof input === "string" ? input : input.url);
  const method = (init.method || "GET").toUpperCase();
  const params = Object.fromEntries(target.searchParams.entries());
  const body = typeof init.body === "string" ? parseMaybe(init.body) : null;
  const extensions =
    method === "GET" ? parseMaybe(params.extensions) : body && typeof body === "object" ? body.extensions : null;
  const record = {
    client,
    method,
    params, // the query string of a GET, decoded
    body, // the JSON body of a POST
    headers: Object.fromEntries(new Headers(init.headers || {}).entries()),
    sentQuery: "query" in params || Boolean(body && typeof body === "object" && "query" in body),
    sha256Hash: extensions && extensions.persistedQuery ? extensions.persistedQuery.sha256Hash : null,
  };
  requests.push(record);
  let response;
  try {
    response = await fetch(input, init);
  } catch (error) {
    record.fetchError = String(error);
    throw error;
  }
  record.status = response.status;
  const answer = parseMaybe(await response.clone().text());
  record.answer = answer;
  record.errorCodes =
    answer && typeof answer === "object" && Array.isArray(answer.errors)
      ? answer.errors.map((e) => (e.extensions && e.extensions.code) || e.message)
      : [];
  return response;
}

function newClient(name) {
  const http = new HttpLink({
    uri: url,
    fetch: (input, init) => recordingFetch(name, input, init),
  });
  const apq = new PersistedQueryLink({
    sha256: (text) => createHash("sha256").update(text).digest("hex"),
    useGETForHashedQueries: useGET,
  });
  return new ApolloClient({ link: ApolloLink.from([apq, http]), cache: new InMemoryCache() });
}

async function run(name) {
  const client = newClient(name);
  try {
    const result = await client.query({ query: OPEN_JOBS, variables: VARIABLES, fetchPolicy: "network-only" });
    return { client: name, data: result.data ?? null, error: result.error ? String(result.error) : null };
  } catch (error) {
    return { client: name, data: null, error: String(error) };
  } finally {
    client.stop();
  }
}

const results = [];
results.push(await run("first"));
results.push(await run("second"));
process.stdout.write(JSON.stringify({ requests, results }) + "\n", () => process.exit(0));
