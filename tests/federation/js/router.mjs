// Apollo Gateway composing our Job subgraph (JOBS_URL) with a small "reviews"
// subgraph that extends Job by komboId. Prints one JSON line with both URLs once
// it serves, then runs until killed. Both listen on loopback only.
import { ApolloGateway, IntrospectAndCompose, RemoteGraphQLDataSource } from "@apollo/gateway";
import { ApolloServer } from "@apollo/server";
import { ApolloServerPluginInlineTraceDisabled } from "@apollo/server/plugin/disabled";
import { startStandaloneServer } from "@apollo/server/standalone";
import { buildSubgraphSchema } from "@apollo/subgraph";
import gql from "graphql-tag";

const reviewsTypeDefs = gql`
  extend schema
    @link(url: "https://specs.apollo.dev/federation/v2.0", import: ["@key", "@shareable"])

  type Job @key(fields: "komboId") {
    komboId: String!
    reviewScore: Int!
  }

  type Review {
    text: String!
    job: Job!
  }

  type PageInfo @shareable {
    hasNextPage: Boolean!
    hasPreviousPage: Boolean!
    startCursor: String
    endCursor: String
  }

  type ReviewConnection {
    nodes: [Review!]!
    pageInfo: PageInfo!
  }

  type Query {
    reviewsOf(komboIds: [String!]!): ReviewConnection!
  }
`;

// A deterministic score, so tests can recompute it.
const score = (komboId) => [...komboId].reduce((sum, c) => sum + c.charCodeAt(0), 0) % 5 + 1;

const reviewsResolvers = {
  Job: {
    __resolveReference: (job) => ({ komboId: job.komboId }),
    reviewScore: (job) => score(job.komboId),
  },
  Query: {
    reviewsOf: (_, { komboIds }) => ({
      nodes: komboIds.map((komboId) => ({ text: `review of ${komboId}`, job: { komboId } })),
      pageInfo: { hasNextPage: false, hasPreviousPage: false, startCursor: null, endCursor: null },
    }),
  },
};

const reviews = new ApolloServer({
  schema: buildSubgraphSchema({ typeDefs: reviewsTypeDefs, resolvers: reviewsResolvers }),
  plugins: [ApolloServerPluginInlineTraceDisabled()],
});
const { url: reviewsUrl } = await startStandaloneServer(reviews, {
  listen: { host: "127.0.0.1", port: 0 },
});

class ForwardIntegration extends RemoteGraphQLDataSource {
  willSendRequest({ request, context }) {
    if (context.integration) request.http.headers.set("x-integration-id", context.integration);
  }
}

const gateway = new ApolloGateway({
  supergraphSdl: new IntrospectAndCompose({
    subgraphs: [
      { name: "jobs", url: process.env.JOBS_URL },
      { name: "reviews", url: reviewsUrl },
    ],
  }),
  buildService: ({ url }) => new ForwardIntegration({ url }),
});
const router = new ApolloServer({ gateway });
const { url: routerUrl } = await startStandaloneServer(router, {
  listen: { host: "127.0.0.1", port: 0 },
  context: async ({ req }) => ({ integration: req.headers["x-integration-id"] }),
});
console.log(JSON.stringify({ routerUrl, reviewsUrl }));
