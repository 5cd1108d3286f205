// The open jobs, filtered like a careers page: a query with a fragment spread, a
// variable with a default value and an input-object variable.
import { graphql, useLazyLoadQuery } from "react-relay";
import { JobRow } from "./JobRow";

export const JobListQuery = graphql`
  query JobListQuery($first: Int = 10, $filter: JobFilter) {
    jobs(first: $first, filter: $filter) {
      nodes {
        id
        komboId
        ...JobRow_job
      }
      pageInfo {
        hasNextPage
      }
    }
  }
`;

export function JobList({ filter = null }) {
  const data = useLazyLoadQuery(JobListQuery, { first: 10, filter });
  return data.jobs.nodes.map((job) => JobRow({ job }));
}
