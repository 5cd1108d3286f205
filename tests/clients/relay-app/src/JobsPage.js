// An infinite list of jobs: a @connection (Relay adds cursor, __typename and pageInfo)
// in a @refetchable fragment, so the compiler also generates JobsPagePaginationQuery,
// the query `loadNext` sends with the last page's end cursor.
import { graphql, useLazyLoadQuery, usePaginationFragment } from "react-relay";
import { JobRow } from "./JobRow";

export const JobsPageQuery = graphql`
  query JobsPageQuery($count: Int = 5) {
    ...JobsPage_query @arguments(count: $count)
  }
`;

export const JobsPageFragment = graphql`
  fragment JobsPage_query on Query
  @argumentDefinitions(count: { type: "Int", defaultValue: 5 }, cursor: { type: "String" })
  @refetchable(queryName: "JobsPagePaginationQuery") {
    jobs(first: $count, after: $cursor) @connection(key: "JobsPage_jobs") {
      edges {
        node {
          id
          ...JobRow_job
        }
      }
    }
  }
`;

export function JobsPage() {
  const query = useLazyLoadQuery(JobsPageQuery, {});
  const { data, hasNext, loadNext } = usePaginationFragment(JobsPageFragment, query);
  const rows = data.jobs.edges.map((edge) => JobRow({ job: edge.node }));
  return { rows, more: hasNext ? () => loadNext(5) : null };
}
