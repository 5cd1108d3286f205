// Jobs side by side, by global ID: `nodes(ids:)`, whose items are Nodes; the Job
// fragment is spread with @alias (null on other types), as Relay asks.
import { graphql, useLazyLoadQuery } from "react-relay";
import { JobRow } from "./JobRow";

export const CompareJobsQuery = graphql`
  query CompareJobsQuery($ids: [ID!]!) {
    nodes(ids: $ids) {
      id
      ...JobRow_job @alias
    }
  }
`;

export function CompareJobs({ ids }) {
  const data = useLazyLoadQuery(CompareJobsQuery, { ids });
  return data.nodes.filter((node) => node && node.JobRow_job).map((node) => JobRow({ job: node.JobRow_job }));
}
