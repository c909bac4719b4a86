// The server's access token: taken from the page URL's ?token= once, kept in sessionStorage (this tab only), and
// removed from the address bar so it is not bookmarked or shared by accident.
const KEY = 'loragraph.token';

export function readToken(): string | null {
  const url = new URL(window.location.href);
  const fromUrl = url.searchParams.get('token');
  if (fromUrl) {
    sessionStorage.setItem(KEY, fromUrl);
    url.searchParams.delete('token');
    window.history.replaceState(null, '', url.toString());
    return fromUrl;
  }
  return sessionStorage.getItem(KEY);
}

export const token = readToken();

export function authHeaders(): Record<string, string> {
  return token ? { Authorization: `Bearer ${token}` } : {};
}
