"""The /docs page: a self-contained renderer of the OpenAPI document.

No CDN: the gateway often runs where the browser has no internet access, so the page
fetches the spec from this server and renders operations, parameters, bodies and
schemas with a few lines of plain JavaScript.
"""

DOCS_PAGE = """<!doctype html>
<html lang="en"><head><meta charset="utf-8">
<title>fullon_gateway API</title>
<meta name="viewport" content="width=device-width, initial-scale=1">
<style>
body{font-family:system-ui,sans-serif;margin:0;background:#f6f7f9;color:#1c2330}
header{background:#1c2330;color:#fff;padding:14px 24px}
header a{color:#9cf}
main{max-width:1100px;margin:0 auto;padding:16px 24px}
h2{border-bottom:1px solid #ccd;padding-bottom:4px;margin-top:28px;text-transform:capitalize}
details{background:#fff;border:1px solid #dde;border-radius:6px;margin:6px 0}
summary{cursor:pointer;padding:8px 10px;font-family:ui-monospace,monospace}
.m{display:inline-block;min-width:64px;font-weight:bold;text-transform:uppercase}
.get{color:#0a7}.post{color:#07c}.patch{color:#c70}.put{color:#c70}.delete{color:#c22}
.s{color:#556;font-family:system-ui,sans-serif;margin-left:8px}
.body{padding:4px 16px 12px}
pre{background:#f0f2f5;padding:8px;overflow:auto;font-size:12px}
table{border-collapse:collapse;font-size:13px}
td,th{border:1px solid #dde;padding:3px 8px;text-align:left}
input{padding:6px;width:300px}
</style></head>
<body><header><b>fullon_gateway</b> &mdash; <span id="ver"></span>
&middot; <a href="{{SPEC_PATH}}">openapi.json</a></header>
<main><p><input id="filter" placeholder="filter paths..."></p><div id="out">loading...</div></main>
<script>
const ENT={'&':'&amp;','<':'&lt;','>':'&gt;','"':'&quot;'};
function esc(s){return String(s).replace(/[&<>"]/g,c=>ENT[c])}
function render(spec, q){
  const byTag={};
  for(const [path,ops] of Object.entries(spec.paths||{})){
    if(q && !path.includes(q)) continue;
    for(const [m,op] of Object.entries(ops)){
      const tag=(op.tags||['other'])[0]; (byTag[tag]=byTag[tag]||[]).push([path,m,op]);
    }
  }
  let html='';
  for(const tag of Object.keys(byTag).sort()){
    html+='<h2>'+esc(tag)+'</h2>';
    for(const [path,m,op] of byTag[tag]){
      html+='<details><summary><span class="m '+m+'">'+m+'</span>'+esc(path)+
        '<span class="s">'+esc(op.summary||'')+'</span></summary><div class="body">';
      if(op.description) html+='<p>'+esc(op.description)+'</p>';
      const sec=(op.security&&op.security.length===0)?'public':'Bearer JWT or X-API-Key';
      html+='<p><b>Auth:</b> '+sec+'</p>';
      if(op.parameters&&op.parameters.length){
        html+='<table><tr><th>param</th><th>in</th><th>type</th><th>required</th></tr>';
        for(const p of op.parameters) html+='<tr><td>'+esc(p.name)+'</td><td>'+esc(p.in)+
          '</td><td>'+esc((p.schema||{}).type||'')+'</td><td>'+(p.required?'yes':'')+'</td></tr>';
        html+='</table>';
      }
      if(op.requestBody) html+='<p><b>Body</b></p><pre>'+
        esc(JSON.stringify(op.requestBody.content['application/json'].schema,null,1))+'</pre>';
      html+='<p><b>Responses:</b> '+Object.keys(op.responses||{}).join(', ')+'</p></div></details>';
    }
  }
  html+='<h2>schemas</h2>';
  for(const [n,s] of Object.entries((spec.components||{}).schemas||{}))
    html+='<details><summary>'+esc(n)+'</summary><pre>'+esc(JSON.stringify(s,null,1))+'</pre></details>';
  document.getElementById('out').innerHTML=html;
}
fetch('{{SPEC_PATH}}').then(r=>r.json()).then(spec=>{
  document.getElementById('ver').textContent=spec.info.title+' '+spec.info.version;
  render(spec,'');
  document.getElementById('filter').oninput=e=>render(spec,e.target.value);
}).catch(e=>{document.getElementById('out').textContent='could not load the spec: '+e});
</script></body></html>
"""
